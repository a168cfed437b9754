"""Ingest benchmark: the write-up's parse vs ecgtune's (first load, parse without cache, cached load) on
the same 100,000-row competition-format file, in one run.

    python bench/bench_ingest.py [--file train.csv] [--rows 100000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from writeup_baseline import parse_like_the_write_up  # noqa: E402

from ecgtune.data import load_dataset, make_synthetic, write_dataset  # noqa: E402


def timed(function, repeats: int = 1) -> float:
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, help="competition-format file (default: make one with make-data's generator)")
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ecgtune-bench-"))
    path = args.file
    if path is None:
        path = workdir / "train.csv"
        write_dataset(make_synthetic(args.rows, seed=0), path)
    os.environ["ECGTUNE_CACHE_DIR"] = str(workdir / "cache")
    size_mb = path.stat().st_size / 1e6

    write_up = timed(lambda: parse_like_the_write_up(path))
    no_cache = timed(lambda: load_dataset(path, use_cache=False), repeats=3)
    first = timed(lambda: load_dataset(path))
    cached = timed(lambda: load_dataset(path), repeats=5)

    print(f"file: {path} ({size_mb:.0f} MB); python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"{'method':<38}{'seconds':>10}{'vs write-up':>14}")
    for name, seconds in [("write-up (pandas + per-row split)", write_up),
                          ("ecgtune parse, no cache", no_cache),
                          ("ecgtune first load (parse + cache)", first),
                          ("ecgtune cached load", cached)]:
        print(f"{name:<38}{seconds:>10.3f}{write_up / seconds:>13.1f}x")
    print(f"cached load vs first load: {first / cached:.0f}x faster")


if __name__ == "__main__":
    main()
