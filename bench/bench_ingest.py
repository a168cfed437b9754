"""Ingest benchmark: the write-up's parse vs ecgtune's load on the same competition-format file, in one run.

Every measurement runs in a fresh Python process (as a user's command would), the methods interleaved
round by round; the table reports medians. A cached load maps its arrays rather than reading them, so
the table also times one pass over every sample after each ecgtune load: a mapped array whose pages
are still to be brought in would show there.

    python bench/bench_ingest.py [--file train.csv] [--rows 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = {
    "write-up": "write-up (pandas + per-row split)",
    "no-cache": "ecgtune parse, cache off",
    "first": "ecgtune first load (parse + cache)",
    "cached": "ecgtune cached load",
}


def measure(method: str, path: Path) -> tuple[float, float]:
    """Seconds one load takes in this process (imports excluded), and then one pass over every sample
    (NaN for the write-up's DataFrame)."""
    sys.path.insert(0, str(HERE))
    from writeup_baseline import parse_like_the_write_up

    from ecgtune.data import load_dataset

    started = time.perf_counter()
    if method == "write-up":
        parse_like_the_write_up(path)
        return time.perf_counter() - started, float("nan")
    data = load_dataset(path, use_cache=method != "no-cache")
    loaded = time.perf_counter()
    data.signals.sum(dtype="float64")
    return loaded - started, time.perf_counter() - loaded


def in_fresh_process(method: str, path: Path, cache_dir: Path) -> tuple[float, float]:
    env = {**os.environ, "ECGTUNE_CACHE_DIR": str(cache_dir)}
    output = subprocess.run([sys.executable, __file__, "--measure", method, "--file", str(path)],
                            env=env, check=True, capture_output=True, text=True).stdout
    load_seconds, pass_seconds = output.strip().splitlines()[-1].split()
    return float(load_seconds), float(pass_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", type=Path, help="competition-format file (default: make one like make-data)")
    source.add_argument("--tile", type=Path, help="make the --rows file by repeating this file's rows, with new ids "
                                                  "(to time another number format, e.g. the Tianchi sample's)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--measure", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(*measure(args.measure, args.file))
        return

    workdir = Path(tempfile.mkdtemp(prefix="ecgtune-bench-"))
    path = args.file
    if path is None and args.tile:
        path = workdir / "train.csv"
        header, *rows = args.tile.read_text().splitlines()
        with open(path, "w") as out:
            out.write(header + "\n")
            out.writelines(f"{i}{rows[i % len(rows)][rows[i % len(rows)].index(','):]}\n" for i in range(args.rows))
    elif path is None:
        from ecgtune.data import make_synthetic, write_dataset

        path = workdir / "train.csv"
        write_dataset(make_synthetic(args.rows, seed=0), path)
    time.sleep(1.5)  # let the file settle so the cache may record its fingerprint
    warm_cache = workdir / "warm-cache"
    in_fresh_process("first", path, warm_cache)
    timings: dict[str, list[float]] = {method: [] for method in METHODS}
    passes: dict[str, list[float]] = {method: [] for method in METHODS}
    for round_number in range(args.rounds):
        for method in METHODS:
            cache_dir = warm_cache if method == "cached" else workdir / f"cold-{method}-{round_number}"
            load_seconds, pass_seconds = in_fresh_process(method, path, cache_dir)
            timings[method].append(load_seconds)
            passes[method].append(pass_seconds)
    size_mb = path.stat().st_size / 1e6
    shutil.rmtree(workdir, ignore_errors=True)

    medians = {method: statistics.median(values) for method, values in timings.items()}
    print(f"file: {path} ({size_mb:.0f} MB) | python {platform.python_version()}, "
          f"{os.cpu_count()} cores | median of {args.rounds} fresh processes per method, interleaved")
    print(f"{'method':<38}{'median s':>10}{'min s':>8}{'max s':>8}{'write-up / this':>17}{'then one pass s':>17}")
    for method, title in METHODS.items():
        values = timings[method]
        print(f"{title:<38}{medians[method]:>10.3f}{min(values):>8.3f}{max(values):>8.3f}"
              f"{medians['write-up'] / medians[method]:>16.1f}x{statistics.median(passes[method]):>17.3f}")
    print(f"cached load vs first load: {medians['first'] / medians['cached']:.0f}x faster")


if __name__ == "__main__":
    main()
