"""`python -m ecgtune ...` runs the command-line interface."""

import sys

from ecgtune.cli import main

sys.exit(main())
