"""Quality on real ECG, and the ensemble's gain on rows never used for selection.

Holds out a stratified share of ../shared/data/mitbih/train.csv.gz with a fixed seed, runs the whole
pipeline (`search.py`: search, ensemble, decision rule, export) on the rest, then scores on the held-out
rows: the best single trial (argmax, 0.5 rule), the exported ensemble (argmax, learned rule); abs-sum
also scaled to 20,000 rows, the size of the competition's test set.

    python bench/mitbih_quality.py [--minutes 25] [--max-epochs 8] [--folds 0] [--out bench/out]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MITBIH = ROOT.parent / "shared" / "data" / "mitbih" / "train.csv.gz"
COMPETITION_TEST_ROWS = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="search budget")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--folds", type=int, default=0, help="cross-fitted members (search --folds)")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--name", default="mitbih")
    args = parser.parse_args()

    from ecgtune.bundle import load_bundle
    from ecgtune.data import HeartbeatData, holdout_split, load_dataset, write_dataset

    data = load_dataset(MITBIH, require_labels=True)
    search_rows, held_out = holdout_split(data.labels, args.holdout, seed=args.seed)
    train_file = args.out / f"mitbih_search_{args.seed}.parquet"
    args.out.mkdir(parents=True, exist_ok=True)
    if not train_file.exists():
        write_dataset(HeartbeatData(data.ids[search_rows], data.signals[search_rows], data.labels[search_rows],
                                    str(MITBIH)), train_file)
    run_dir = args.out / "runs" / args.name
    started = time.monotonic()
    if not (run_dir / "bundle").exists():
        subprocess.run([sys.executable, str(ROOT / "search.py"), "--arch", "all", "--data", str(train_file),
                        "--time-budget", str(args.minutes), "--max-epochs", str(args.max_epochs),
                        "--folds", str(args.folds), "--seed", str(args.seed), "--runs-dir", str(args.out / "runs"),
                        "--name", args.name], check=True, stdout=subprocess.DEVNULL)
    wall_minutes = (time.monotonic() - started) / 60

    signals, labels = data.signals[held_out], data.labels[held_out]
    bundle = load_bundle(run_dir / "bundle")
    ensemble = bundle.predict_proba(signals)
    single = best_single_probs(run_dir, signals)
    stages = {
        "best single trial, argmax": argmax(single),
        "best single trial, 0.5 rule": (single > 0.5).astype(np.float64),
        "ensemble, argmax": argmax(ensemble),
        "ensemble, 0.5 rule": (ensemble > 0.5).astype(np.float64),
        "ensemble, learned rule (the submission)": bundle.decide(ensemble),
    }
    scale = COMPETITION_TEST_ROWS / len(labels)
    print(f"MIT-BIH: {len(search_rows)} rows searched, {len(labels)} held out (seed {args.seed}); "
          f"pipeline wall clock {wall_minutes:.1f} min (0 when reused)")
    print(f"{'stage':<42}{'held-out abs-sum':>18}{'per 20,000 rows':>17}{'accuracy':>10}")
    for stage, values in stages.items():
        score = float(np.abs(values - np.eye(data.n_classes)[labels]).sum())
        accuracy = float((values.argmax(axis=1) == labels).mean())
        print(f"{stage:<42}{score:>18.1f}{score * scale:>17.1f}{accuracy:>10.4f}")


def argmax(probs: np.ndarray) -> np.ndarray:
    """One-hot of each row's most likely class."""
    return np.eye(probs.shape[1])[probs.argmax(axis=1)]


def best_single_probs(run_dir: Path, signals: np.ndarray) -> np.ndarray:
    """Probabilities of the leaderboard's best trial, from its checkpoint."""
    import torch

    from ecgtune.export import load_member
    from ecgtune.trainables import predict_proba

    with open(run_dir / "leaderboard.csv", newline="") as stream:
        best = next(csv.DictReader(stream))
    model, _ = load_member(Path(best["checkpoint"]))
    with torch.no_grad():
        return predict_proba(model, torch.as_tensor(signals, dtype=torch.float32))


if __name__ == "__main__":
    main()
