"""What further refit seeds are worth: one configuration retrained on every search row from several
seeds, as ecgtune's refit trains them, scored on held-out real ECG for the average of 1, 2, ... seeds.

Holds out the same stratified 20 % of MIT-BIH as bench/budget_comparison.py (same --seed), trains the
portfolio's configuration --config (or a family's compact starting point, with the default training
settings) on the other 80 % for --epochs with the refit's settings (the last epoch, with a moving
average of the weights), --parallel networks at a time on the machine's cores, and
reports the abs-sum per 20,000 held-out beats of the average of k seeds' probabilities, for every k:
the mean over every choice of k of the trained seeds, and its spread; of argmax decisions, and of
decisions with the minority classes' probabilities multiplied by fixed factors (a stand-in for the
per-class rule ecgtune fits on validation rows); and the log-loss. Each seed's held-out
probabilities are kept in OUT, so that a rerun trains only the seeds that are missing.

    python bench/refit_seeds.py [--seed 0] [--seeds 6] [--epochs 20] [--config 0 | --config resnet1d]
        [--position-channel on | off]
        [--parallel 2] [--mitbih FILE] [--out bench/out/refit_seeds]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import time

import numpy as np

from ecgtune.experiment import REFIT_EMA_HORIZON
from ecgtune.metrics import abs_sum, argmax_decisions, log_loss

from budget_comparison import COMPETITION_TEST_ROWS, add_task_arguments, describe_machine, prepare_task

MINORITY_BOOSTS = (1.0, 2.0, 3.0)  # 1: plain argmax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6, help="networks to train, from seeds 0, 1, ...")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--config", default="0",
                        help="a portfolio configuration's index (0, 1, ...), or a family's name for its compact start")
    parser.add_argument("--position-channel", choices=("on", "off"),
                        help="override the configuration's position channel (default: as configured)")
    parser.add_argument("--parallel", type=int, default=2, help="networks trained at a time")
    add_task_arguments(parser, "refit_seeds")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    task, data_summary = prepare_task(args, write_train_file=False)
    point = configuration(args.config)
    if args.position_channel:
        point["model/position_channel"] = args.position_channel == "on"
    position = "on" if point.get("model/position_channel") else "off"
    stem = f"split{args.seed}_config{args.config}_epochs{args.epochs}_position{position}"
    missing = [seed for seed in range(args.seeds) if not (args.out / f"{stem}_seed{seed}.npy").is_file()]
    threads = max(1, (os.cpu_count() or 1) // args.parallel)
    print(f"{data_summary['train_rows']} rows to train on, {data_summary['held_out_rows']} held out; training "
          f"seeds {missing} of {point['family']}, {args.epochs} epochs, {args.parallel} at a time", flush=True)
    jobs = [(point, args.epochs, seed, threads, task.train_signals, task.train_labels, task.held_signals,
             task.n_classes, str(args.out / f"{stem}_seed{seed}.npy")) for seed in missing]
    with multiprocessing.get_context("spawn").Pool(args.parallel) as pool:
        for seed, seconds in pool.imap_unordered(train_seed, jobs):
            print(f"seed {seed}: {seconds:.0f} s", flush=True)

    probs = np.array([np.load(args.out / f"{stem}_seed{seed}.npy") for seed in range(args.seeds)])
    table = score_averages(probs, task.held_labels)
    print_table(table)
    results = {"machine": describe_machine(), "data": data_summary, "split_seed": args.seed, "config": point,
               "epochs": args.epochs, "table": table}
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2))


def configuration(name: str) -> dict:
    """The flat parameters of the portfolio's configuration `name` (an index), or of the compact
    starting point of the family `name`."""
    from ecgtune.search_spaces import PORTFOLIO_FILE, default_point

    if name.isdigit():
        return json.loads(PORTFOLIO_FILE.read_text())["configurations"][int(name)]["params"]
    return default_point(name)


def score_averages(probs: np.ndarray, labels: np.ndarray) -> list[dict]:
    """For every k, the held-out scores of the average of every choice of k seeds' probabilities."""
    scale = COMPETITION_TEST_ROWS / len(labels)
    table = []
    for k in range(1, len(probs) + 1):
        averages = [probs[list(chosen)].mean(axis=0) for chosen in itertools.combinations(range(len(probs)), k)]
        row = {"seeds": k, "choices": len(averages),
               "log_loss": float(np.mean([log_loss(average, labels) for average in averages]))}
        for boost in MINORITY_BOOSTS:
            scores = [scale * boosted_abs_sum(average, labels, boost) for average in averages]
            row[f"boost_{boost:g}"] = {"mean": float(np.mean(scores)), "min": float(np.min(scores)),
                                       "max": float(np.max(scores))}
        table.append(row)
    return table


def print_table(table: list[dict]) -> None:
    headers = [f"abs-sum, minority x{boost:g} (mean, best-worst)" for boost in MINORITY_BOOSTS]
    print(f"| seeds averaged | choices | {' | '.join(headers)} | log-loss |")
    print("| ---: | ---: | " + " | ".join("---:" for _ in MINORITY_BOOSTS) + " | ---: |")
    for row in table:
        cells = [f"{row[f'boost_{boost:g}']['mean']:.1f} ({row[f'boost_{boost:g}']['min']:.0f}-"
                 f"{row[f'boost_{boost:g}']['max']:.0f})" for boost in MINORITY_BOOSTS]
        print(f"| {row['seeds']} | {row['choices']} | {' | '.join(cells)} | {row['log_loss']:.4f} |")


def train_seed(job: tuple) -> tuple[int, float]:
    """Trains one seed as the refit does and saves its held-out probabilities; returns its seconds."""
    import torch

    from ecgtune.data import Fold
    from ecgtune.models import create_model
    from ecgtune.search_spaces import point_network
    from ecgtune.trainer import TrainConfig, Trainer, predict_proba

    point, epochs, seed, threads, signals, labels, held_signals, n_classes, out = job
    torch.set_num_threads(threads)
    started = time.monotonic()
    family, model_config = point_network(point)
    train = {key.partition("/")[2]: value for key, value in point.items() if key.startswith("train/")}
    config = TrainConfig(**{**train, "epochs": epochs, "seed": seed, "keep": "last", "ema_horizon": REFIT_EMA_HORIZON})
    fold = Fold(signals, labels, signals[:0], labels[:0], n_classes=n_classes)
    torch.manual_seed(seed)
    model = create_model(family, n_classes=n_classes, **model_config)
    model.load_state_dict(Trainer(model, fold, config).fit().kept_state)
    model.eval()
    np.save(out, predict_proba(model, torch.from_numpy(held_signals)))
    return seed, time.monotonic() - started


def boosted_abs_sum(probs: np.ndarray, labels: np.ndarray, boost: float) -> float:
    """The competition's abs-sum of one-hot decisions after the probabilities of every class but the
    first (the normal beats) are multiplied by `boost`: a fixed stand-in for the per-class rule that
    ecgtune fits on validation rows, which this script does not have."""
    return abs_sum(argmax_decisions(probs * np.r_[1.0, np.full(probs.shape[1] - 1, boost)]), labels)


if __name__ == "__main__":
    main()
