"""Quality on rows the pipeline never saw, and what each stage gains there.

Holds out a stratified share of a labelled file (by default ../shared/data/mitbih/train.csv.gz, real
ECG; or `--synthetic N` embedded beats) with a fixed seed, runs the whole pipeline (`search.py`: search,
ensemble, decision rule, export) on the rest, and scores the held-out rows: the best single trial
(argmax, 0.5 rule) and the exported ensemble (argmax, 0.5 rule, learned rule). With `--folds K` it then
rebuilds the ensemble with cross-fitted members (`ensemble --folds K`) and scores that too. Abs-sums
are also scaled to 20,000 rows, the size of the competition's test set.

    python bench/heldout_quality.py [--minutes 25] [--max-epochs 8] [--folds 0] [--synthetic N]
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
    parser.add_argument("--data", type=Path, default=MITBIH, help="labelled file (default: MIT-BIH)")
    parser.add_argument("--synthetic", type=int, help="use this many embedded synthetic beats instead")
    parser.add_argument("--minutes", type=float, default=25.0, help="search budget")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--folds", type=int, default=0, help="also score cross-fitted members (ensemble --folds)")
    parser.add_argument("--fold-members", type=int, default=5)
    parser.add_argument("--predict-budget", type=float, default=0.0,
                        help="the ensemble's --predict-budget (default 0: no limit, to measure what ensembling gains)")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--name", default="mitbih")
    args = parser.parse_args()

    from ecgtune.bundle import load_bundle
    from ecgtune.data import HeartbeatData, holdout_split, load_dataset, make_synthetic, write_dataset

    data = make_synthetic(args.synthetic, seed=args.seed) if args.synthetic else load_dataset(args.data,
                                                                                             require_labels=True)
    search_rows, held_out = holdout_split(data.labels, args.holdout, seed=args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    train_file = args.out / f"{args.name}_search_{args.seed}.parquet"
    if not train_file.exists():
        write_dataset(HeartbeatData(data.ids[search_rows], data.signals[search_rows], data.labels[search_rows],
                                    data.source), train_file)
    run_dir = args.out / "runs" / args.name
    started = time.monotonic()
    if not (run_dir / "bundle").exists():
        subprocess.run([sys.executable, str(ROOT / "search.py"), "--arch", "all", "--data", str(train_file),
                        "--time-budget", str(args.minutes), "--max-epochs", str(args.max_epochs),
                        "--seed", str(args.seed), "--runs-dir", str(args.out / "runs"), "--name", args.name,
                        "--predict-budget", str(args.predict_budget)],
                       check=True, stdout=subprocess.DEVNULL)
    signals, labels = data.signals[held_out], data.labels[held_out]
    single = best_single_probs(run_dir, signals)
    stages = {"best single trial, argmax": argmax(single),
              "best single trial, 0.5 rule": (single > 0.5).astype(np.float64)}
    stages.update(ensemble_stages("holdout ensemble", load_bundle(run_dir / "bundle"), signals))
    if args.folds > 1:
        subprocess.run([sys.executable, "-m", "ecgtune", "ensemble", "--experiment", str(run_dir), "--folds",
                        str(args.folds), "--fold-members", str(args.fold_members), "--predict-budget",
                        str(args.predict_budget)], check=True, stdout=subprocess.DEVNULL)
        stages.update(ensemble_stages("cross-fitted ensemble", load_bundle(run_dir / "bundle"), signals))
    wall_minutes = (time.monotonic() - started) / 60

    scale = COMPETITION_TEST_ROWS / len(labels)
    print(f"{data.source}: {len(search_rows)} rows searched, {len(labels)} held out (seed {args.seed}); "
          f"pipeline wall clock {wall_minutes:.1f} min (less when earlier steps were reused)")
    print(f"{'stage':<52}{'held-out abs-sum':>18}{'per 20,000 rows':>17}{'accuracy':>10}")
    for stage, values in stages.items():
        score = float(np.abs(values - np.eye(data.n_classes)[labels]).sum())
        accuracy = float((values.argmax(axis=1) == labels).mean())
        print(f"{stage:<52}{score:>18.1f}{score * scale:>17.1f}{accuracy:>10.4f}")


def ensemble_stages(title: str, bundle, signals: np.ndarray) -> dict[str, np.ndarray]:
    """The bundle's outputs for `signals`: argmax, 0.5 rule, and its learned rule."""
    probs = bundle.predict_proba(signals)
    return {f"{title}, argmax": argmax(probs),
            f"{title}, 0.5 rule": (probs > 0.5).astype(np.float64),
            f"{title}, learned rule (its submission)": bundle.decide(probs)}


def argmax(probs: np.ndarray) -> np.ndarray:
    """One-hot of each row's most likely class."""
    return np.eye(probs.shape[1])[probs.argmax(axis=1)]


def best_single_probs(run_dir: Path, signals: np.ndarray) -> np.ndarray:
    """Probabilities of the leaderboard's best trial, from its checkpoint."""
    import torch

    from ecgtune.export import load_member
    from ecgtune.trainer import predict_proba

    with open(run_dir / "leaderboard.csv", newline="") as stream:
        best = next(csv.DictReader(stream))
    model, _ = load_member(Path(best["checkpoint"]))
    with torch.no_grad():
        return predict_proba(model, torch.as_tensor(signals, dtype=torch.float32))


if __name__ == "__main__":
    main()
