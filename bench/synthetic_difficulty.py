"""How hard the embedded synthetic data are: a network's validation accuracy beside the accuracy of a
classifier that knows every beat's true wave parameters (an estimate of the best possible), and the
time to generate 100,000 beats.

    python bench/synthetic_difficulty.py [--family dilated_cnn] [--rows 50000] [--epochs 12]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ecgtune.data import holdout_split, make_synthetic, prepare_fold, synthetic
from ecgtune.trainer import TrainConfig, train_family


def parameter_oracle_accuracy(n_rows: int = 200_000, seed: int = 0) -> float:
    """Accuracy of the Gaussian likelihood classifier on the true (unrendered) wave parameters."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(synthetic.CLASS_PRIOR), size=n_rows, p=synthetic.CLASS_PRIOR)
    params = synthetic._wave_parameters(rng, labels)
    scores = []
    for label, means in enumerate(synthetic.CLASS_MEANS):
        spread = np.abs(means) * synthetic.RELATIVE_SPREAD + synthetic.ABSOLUTE_SPREAD
        used = spread > 0
        z = (params[:, used] - means[used]) / spread[used]
        scores.append(np.log(synthetic.CLASS_PRIOR[label]) - (0.5 * z**2 + np.log(spread[used])).sum(axis=1))
    return float((np.argmax(scores, axis=0) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="dilated_cnn")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=12)
    args = parser.parse_args()

    started = time.perf_counter()
    make_synthetic(100_000, seed=0)
    generation = time.perf_counter() - started
    beats = make_synthetic(args.rows, seed=0)
    fold = prepare_fold(beats, *holdout_split(beats.labels, 0.2, seed=0))
    _, result = train_family(args.family, fold, config=TrainConfig(epochs=args.epochs))
    print(f"{'measure':<58}{'value':>10}")
    print(f"{'seconds to generate 100,000 beats':<58}{generation:>10.2f}")
    print(f"{'accuracy knowing the true wave parameters (best possible)':<58}{parameter_oracle_accuracy():>10.4f}")
    title = f"{args.family} accuracy ({len(fold.train_labels)} train rows, {args.epochs} epochs)"
    print(f"{title:<58}{result.kept_metrics['accuracy']:>10.4f}")
    print(f"{args.family + ' validation abs-sum (' + str(len(fold.val_labels)) + ' rows)':<58}"
          f"{result.kept_metrics['abs_sum']:>10.0f}")


if __name__ == "__main__":
    main()
