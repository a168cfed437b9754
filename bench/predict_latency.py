"""Predict latency: 20,000 rows through an exported bundle (`python -m ecgtune predict`, the whole command
in a fresh process), beside the write-up's way (each member in eager PyTorch, then the weighted average),
on the same machine in one run.

    python bench/predict_latency.py --bundle runs/NAME/bundle [--rows 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()

    import torch

    from ecgtune.data import load_dataset
    from ecgtune.export import load_member

    args.out.mkdir(parents=True, exist_ok=True)
    test_file = args.out / f"test_{args.rows}.csv"
    if not test_file.exists():
        subprocess.run([sys.executable, "-m", "ecgtune", "make-data", "--n", "10", "--out",
                        str(args.out / "unused.csv"), "--test-out", str(test_file), "--test-n", str(args.rows)],
                       check=True, stdout=subprocess.DEVNULL)
    command = [sys.executable, "-m", "ecgtune", "predict", "--bundle", str(args.bundle), "--data", str(test_file),
               "--out", str(args.out / "submission.csv")]
    bundle_seconds = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        bundle_seconds.append(time.perf_counter() - started)

    manifest = json.loads((args.bundle / "manifest.json").read_text())
    signals = torch.as_tensor(load_dataset(test_file).signals)
    networks = [(member["family"], member["weight"] / len(member["checkpoints"]), load_member(Path(checkpoint))[0])
                for member in manifest["members"] for checkpoint in member["checkpoints"]]
    eager_seconds, member_rows = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        with torch.no_grad():
            total = 0
            for family, weight, model in networks:
                member_start = time.perf_counter()
                probs = torch.cat([model(signals[i:i + 4096]).softmax(dim=1) for i in range(0, len(signals), 4096)])
                member_rows.append((family, len(signals) / (time.perf_counter() - member_start)))
                total = total + weight * probs
        eager_seconds.append(time.perf_counter() - started)

    families = ", ".join(member["family"] for member in manifest["members"])
    print(f"bundle: {args.bundle} ({len(networks)} networks: {families}); {args.rows} rows; torch threads "
          f"{torch.get_num_threads()}")
    for family, rows_per_s in member_rows[:len(networks)]:
        print(f"  eager PyTorch, {family}: {rows_per_s:,.0f} rows/s")
    eager = statistics.median(eager_seconds)
    print(f"{'method':<66}{'median s':>10}{'min s':>8}{'max s':>8}{'speed-up':>10}")
    for title, seconds in (("write-up way: members in eager PyTorch (loaded, inference only)", eager_seconds),
                           ("ecgtune predict, whole command (ONNX Runtime)", bundle_seconds)):
        median = statistics.median(seconds)
        print(f"{title:<66}{median:>10.2f}{min(seconds):>8.2f}{max(seconds):>8.2f}{eager / median:>9.1f}x")


if __name__ == "__main__":
    main()
