"""Peak memory of `python search.py --arch all` on a 100,000-row competition-format file.

Samples every second the resident memory summed over the command and every process it started (Ray's
raylet, object store and workers; shared pages count once per process, so the sum overstates), and
the machine's used memory (MemTotal - MemAvailable) above what it was before the start.

    python bench/peak_memory.py [--rows 100000] [--minutes 4] [--out bench/out]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE_BYTES = 4096


def descendants(root: int) -> set[int]:
    """`root` and every process below it, from /proc."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = set(), [root]
    while pending:
        pid = pending.pop()
        found.add(pid)
        pending.extend(children.get(pid, []))
    return found


def resident_bytes(pids: set[int]) -> int:
    """Resident memory summed over `pids`."""
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        except (OSError, IndexError):
            continue
    return total


def used_bytes() -> int:
    """The machine's memory in use: MemTotal - MemAvailable."""
    info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    return (int(info["MemTotal"].split()[0]) - int(info["MemAvailable"].split()[0])) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--minutes", type=float, default=4.0, help="search budget")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / f"train_{args.rows}.csv"
    if not data.exists():
        subprocess.run([sys.executable, "-m", "ecgtune", "make-data", "--n", str(args.rows), "--out", str(data)],
                       check=True, stdout=subprocess.DEVNULL)
    baseline = used_bytes()
    started = time.monotonic()
    command = [sys.executable, str(ROOT / "search.py"), "--arch", "all", "--data", str(data), "--time-budget",
               str(args.minutes), "--runs-dir", str(args.out / "runs"), "--name", f"memory-{int(time.time())}"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_tree, peak_used = 0, 0
    while process.poll() is None:
        peak_tree = max(peak_tree, resident_bytes(descendants(process.pid)))
        peak_used = max(peak_used, used_bytes() - baseline)
        time.sleep(1.0)
    gib = 1024 ** 3
    print(f"command: {' '.join(command[1:])} (exit {process.returncode}, {(time.monotonic() - started) / 60:.1f} min)")
    print(f"{'measure':<58}{'GiB':>8}")
    print(f"{'peak resident memory, summed over the process tree':<58}{peak_tree / gib:>8.2f}")
    print(f"{'peak machine memory in use above the baseline':<58}{peak_used / gib:>8.2f}")


if __name__ == "__main__":
    main()
