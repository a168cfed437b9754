"""`python search.py --arch all ...`: search architecture families on the embedded data or --data PATH.

Every flag: `python search.py --help`.
"""

import sys

from ecgtune.cli import main

if __name__ == "__main__":
    sys.exit(main(["search", *sys.argv[1:]]))
