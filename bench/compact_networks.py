"""Do the compact starting points lose accuracy against the write-up's sizes on real 205-sample beats?

Trains each chosen family twice with the same recipe (the trainer's defaults, seeded): at the family's
default (write-up) sizes and at its compact starting point (`search_spaces.families.COMPACT`), on a
stratified subset of MIT-BIH, and scores both on a stratified validation share. Reports validation
abs-sum, accuracy, multiply-accumulates per beat and training samples/s, with the ratios.

    python bench/compact_networks.py [--families dilated_cnn,resnet1d] [--rows 20000] [--epochs 6] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
MITBIH = ROOT.parent / "shared" / "data" / "mitbih" / "train.csv.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="dilated_cnn,resnet1d")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of MIT-BIH used (stratified)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    from ecgtune.data import holdout_split, load_dataset, prepare_fold
    from ecgtune.models.cost import network_macs
    from ecgtune.search_spaces.families import COMPACT
    from ecgtune.trainer import TrainConfig, train_family

    data = load_dataset(MITBIH, require_labels=True)
    _, subset = holdout_split(data.labels, args.rows / len(data), seed=0)
    train_rows, val_rows = holdout_split(data.labels[subset], 0.25, seed=0)
    fold = prepare_fold(data, subset[train_rows], subset[val_rows])
    print(f"{time.strftime('%Y-%m-%d')}: MIT-BIH, {len(train_rows)} training and {len(val_rows)} validation rows, "
          f"{args.epochs} epochs, seeds {args.seeds}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print("| family | size | MMAC per beat | samples/s | val abs-sum (mean) | accuracy (mean) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for family in args.families.split(","):
        for size, config in (("write-up", {}), ("compact", COMPACT[family])):
            scores, accuracies, speeds = [], [], []
            for seed in args.seeds:
                _, result = train_family(family, fold, config, TrainConfig(epochs=args.epochs, seed=seed))
                scores.append(result.kept_metrics["abs_sum"])
                accuracies.append(result.kept_metrics["accuracy"])
                speeds.append(np.median([epoch["samples_per_s"] for epoch in result.history]))
            macs = network_macs(family, config) / 1e6
            print(f"| {family} | {size} | {macs:.1f} | {np.mean(speeds):,.0f} | {np.mean(scores):.1f} "
                  f"({', '.join(f'{s:.0f}' for s in scores)}) | {np.mean(accuracies):.4f} |", flush=True)


if __name__ == "__main__":
    main()
