"""Training throughput: the write-up's loop (Dataset + DataLoader, batch 32) vs the ecgtune trainer
(device-resident data, index batches, default batch size) on the same model and device, in one run.

    python bench/bench_train.py [--arch all] [--rows 8192] [--device auto]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from writeup_baseline import train_like_the_write_up  # noqa: E402

from ecgtune.cli import parse_families  # noqa: E402
from ecgtune.data import Fold, make_synthetic  # noqa: E402
from ecgtune.models import create_model  # noqa: E402
from ecgtune.trainer import TrainConfig, resolve_device, train  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="all")
    parser.add_argument("--rows", type=int, default=8192, help="training rows per measurement")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    args = parser.parse_args()
    device = resolve_device(args.device)
    beats = make_synthetic(args.rows + 512, seed=0)
    signals, labels = beats.signals[:args.rows], beats.labels[:args.rows]
    fold = Fold(signals, labels, beats.signals[args.rows:], beats.labels[args.rows:], n_classes=4)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"device: {name}; torch {torch.__version__}; {args.rows} training rows per measurement")
    print(f"{'family':<16}{'write-up samples/s':>20}{'ecgtune samples/s':>20}{'speed-up':>10}")
    for family in parse_families(args.arch):
        torch.manual_seed(0)
        reference = train_like_the_write_up(create_model(family), signals, labels, device)
        torch.manual_seed(0)
        result = train(create_model(family), fold, TrainConfig(epochs=2, batch_size=args.batch_size,
                                                              device=str(device)))
        ours = result.history[-1]["samples_per_s"]
        print(f"{family:<16}{reference:>20,.0f}{ours:>20,.0f}{ours / reference:>9.1f}x")


if __name__ == "__main__":
    main()
