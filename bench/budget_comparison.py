"""The whole ecgtune pipeline against what a user would pick instead, at the same wall-clock budget on
this machine, scored on real ECG rows that no method saw.

Holds out a stratified 20 % of ../shared/data/mitbih/train.csv.gz (seeded), writes the other 80 % to
OUT/search_<seed>.parquet, and at each budget runs these one after another, each on those 80 %:

    ecgtune     search.py --arch all (search, ensemble, decision rule, export); its bundle's submission
    net1        the write-up's Net1 written by hand, AdamW + one-cycle for as many epochs as fit the budget
    minirocket  aeon's MiniRocket features + logistic regression fitted by SGD
    lightgbm    LightGBM on the 205 raw samples

minirocket and lightgbm do not depend on the budget: they run once and appear in every budget's table.
A method's wall time covers training and predicting the held-out rows. Per method: the held-out
abs-sum, the same scaled to 20,000 rows (the competition's test size), accuracy, wall time, and its
abs-sum divided by ecgtune's; per budget, ecgtune's rank. Tables are printed; OUT/results.json keeps it all.

    python bench/budget_comparison.py [--minutes 10 30] [--methods ecgtune,net1,minirocket,lightgbm]
        [--seed 0] [--rows N] [--mitbih FILE] [--out bench/out/budget_comparison] [--ecgtune-args --predict-budget 0 ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
MITBIH = ROOT.parent / "shared" / "data" / "mitbih" / "train.csv.gz"
COMPETITION_TEST_ROWS = 20_000
HOLDOUT_FRACTION = 0.2
METHODS = ("ecgtune", "net1", "minirocket", "lightgbm")
BUDGET_INDEPENDENT = ("minirocket", "lightgbm")
CORES = os.cpu_count() or 1

NET1_BATCH = 256
NET1_MAX_LR = 3e-3
NET1_DIV_FACTOR = 25.0  # one-cycle starts at max_lr / 25 (PyTorch's default)
ROCKET_CHUNK_ROWS = 8192  # rows transformed at a time: 8192 x ~10,000 float32 features is 330 MB


@dataclass
class Task:
    """The rows every method trains on and the held-out rows every method is scored on."""

    train_signals: np.ndarray
    train_labels: np.ndarray
    held_signals: np.ndarray
    held_labels: np.ndarray
    n_classes: int
    train_file: Path


@dataclass
class Submission:
    """A method's submitted values for the held-out rows, its predicted classes, and notes on the run."""

    values: np.ndarray
    classes: np.ndarray
    details: dict = field(default_factory=dict)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10.0, 30.0], help="wall-clock budgets")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    add_task_arguments(parser, "budget_comparison")
    parser.add_argument("--ecgtune-args", nargs=argparse.REMAINDER, default=[],
                        help="everything after this goes to search.py (e.g. --predict-budget 0)")
    args = parser.parse_args()
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")

    args.out.mkdir(parents=True, exist_ok=True)
    task, data_summary = prepare_task(args, write_train_file="ecgtune" in methods)
    machine = describe_machine()
    print(f"{machine['date']}: {machine['nproc']} cores, {machine['cpu']}, torch {machine['versions']['torch']}")
    print(f"{data_summary['file']}: {data_summary['rows']} rows, {data_summary['train_rows']} to train on, "
          f"{data_summary['held_out_rows']} held out (seed {args.seed})")

    results = {"machine": machine, "data": data_summary, "seed": args.seed, "ecgtune_args": args.ecgtune_args,
               "budgets": []}
    run_once: dict[str, dict] = {}
    for minutes in args.minutes:
        scores = {}
        for method in methods:
            if method in run_once:
                scores[method] = run_once[method]
                continue
            print(f"[{minutes:g} min] {method} ...", flush=True)
            scores[method] = evaluate(method, task, minutes, args)
            if method in BUDGET_INDEPENDENT:
                run_once[method] = scores[method]
        rank = compare_with_ecgtune(scores)
        results["budgets"].append({"minutes": minutes, "ecgtune_rank": rank, "methods": scores})
        print_table(minutes, scores, rank, len(task.held_labels))
        # Written after every budget so that an interrupted long run keeps what it measured.
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {args.out / 'results.json'}")


def add_task_arguments(parser: argparse.ArgumentParser, out_name: str) -> None:
    """The arguments `prepare_task` reads: the split's seed, a subsample, the file, and the output
    folder (bench/out/`out_name` by default)."""
    parser.add_argument("--seed", type=int, default=0, help="the held-out split's seed")
    parser.add_argument("--rows", type=int, help="use a stratified subsample of this many labelled rows")
    parser.add_argument("--mitbih", type=Path, default=MITBIH, help="the labelled MIT-BIH file")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / out_name)


def prepare_task(args, write_train_file: bool) -> tuple[Task, dict]:
    """Loads the labelled file, optionally subsamples it, holds out a stratified share, writes the rest."""
    from ecgtune.data import HeartbeatData, holdout_split, load_dataset, write_dataset

    data = load_dataset(args.mitbih, require_labels=True)
    if args.rows and args.rows < len(data):
        _, kept = holdout_split(data.labels, args.rows / len(data), seed=args.seed)
        data = HeartbeatData(data.ids[kept], data.signals[kept], data.labels[kept], data.source)
    train_rows, held_out = holdout_split(data.labels, HOLDOUT_FRACTION, seed=args.seed)
    train_file = args.out / f"search_{args.seed}.parquet"
    if write_train_file:
        # Rewritten on every run, so that it always matches this run's --rows and --seed.
        write_dataset(HeartbeatData(data.ids[train_rows], data.signals[train_rows], data.labels[train_rows],
                                    data.source), train_file)
    task = Task(data.signals[train_rows], data.labels[train_rows], data.signals[held_out], data.labels[held_out],
                data.n_classes, train_file)
    summary = {"file": str(args.mitbih), "rows": len(data), "train_rows": len(train_rows),
               "held_out_rows": len(held_out), "train_file": str(train_file)}
    return task, summary


def evaluate(method: str, task: Task, minutes: float, args) -> dict:
    """Runs one method under the wall clock and scores its submission on the held-out rows."""
    from ecgtune.metrics import abs_sum

    started = time.monotonic()
    submission = RUNNERS[method](task, minutes, args)
    wall_seconds = time.monotonic() - started
    score = abs_sum(submission.values, task.held_labels)
    return {"abs_sum": score,
            "abs_sum_per_20000": score * COMPETITION_TEST_ROWS / len(task.held_labels),
            "accuracy": float((submission.classes == task.held_labels).mean()),
            "wall_s": wall_seconds,
            "budget_independent": method in BUDGET_INDEPENDENT,
            "details": submission.details}


def compare_with_ecgtune(scores: dict[str, dict]) -> int | None:
    """Adds each method's abs-sum relative to ecgtune's; returns ecgtune's rank (1 = lowest abs-sum)."""
    if "ecgtune" not in scores:
        return None
    reference = scores["ecgtune"]["abs_sum_per_20000"]
    for score in scores.values():
        score["ratio_to_ecgtune"] = score["abs_sum_per_20000"] / reference if reference > 0 else None
    return 1 + sum(score["abs_sum_per_20000"] < reference for score in scores.values())


def print_table(minutes: float, scores: dict[str, dict], rank: int | None, n_held_out: int) -> None:
    """One markdown table for one budget."""
    print(f"\n### {minutes:g}-minute budget, {n_held_out} held-out rows\n")
    print("| method | abs-sum | per 20,000 rows | ÷ ecgtune | accuracy | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for method, score in scores.items():
        ratio = score.get("ratio_to_ecgtune")
        label = f"{method} (run once, any budget)" if score["budget_independent"] else method
        print(f"| {label} | {score['abs_sum']:.1f} | {score['abs_sum_per_20000']:.1f} | "
              f"{'' if ratio is None else f'{ratio:.2f}'} | {score['accuracy']:.4f} | {score['wall_s']:.0f} |")
    if rank is not None:
        print(f"\necgtune ranks {rank} of {len(scores)}.")
    print()


def run_ecgtune(task: Task, minutes: float, args) -> Submission:
    """The whole pipeline as a user runs it (search.py), then its bundle's learned decisions."""
    from ecgtune.bundle import load_bundle

    name = f"ecgtune_{minutes:g}min_seed{args.seed}"
    runs_dir = args.out / "runs"
    # A timed run starts from nothing: an earlier experiment of the same name would otherwise be in the way.
    for earlier in [runs_dir / name, *runs_dir.glob(f"{name}-*")]:  # with its refit or fold experiments
        shutil.rmtree(earlier, ignore_errors=True)
    log_path = args.out / f"{name}.log"
    command = [sys.executable, str(ROOT / "search.py"), "--arch", "all", "--data", str(task.train_file),
               "--time-budget", str(minutes), "--seed", str(args.seed), "--runs-dir", str(runs_dir),
               "--name", name, *args.ecgtune_args]
    with open(log_path, "w") as log:
        try:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
        except subprocess.CalledProcessError as error:
            raise SystemExit(f"search.py failed with exit code {error.returncode}; see {log_path}") from None
    bundle = load_bundle(runs_dir / name / "bundle")
    probs = bundle.predict_proba(task.held_signals)
    return Submission(bundle.decide(probs), probs.argmax(axis=1),
                      {"run_dir": str(runs_dir / name), "log": str(log_path),
                       "members": len(bundle.manifest["members"])})


class Net1(nn.Module):
    """The write-up's Net1 (BN on the input, conv k11, strided convs k11/s5 and k6/s3, a dilated conv,
    adaptive max-pool, MLP), ending in logits instead of Softmax."""

    def __init__(self, n_classes: int):
        super().__init__()
        self.layers = nn.Sequential(
            nn.BatchNorm1d(1),
            nn.Conv1d(1, 64, 11, padding=5), nn.LeakyReLU(),
            nn.Conv1d(64, 128, 11, stride=5), nn.BatchNorm1d(128), nn.LeakyReLU(),
            nn.Conv1d(128, 256, 6, stride=3), nn.BatchNorm1d(256), nn.LeakyReLU(),
            # padding 10 keeps the length (12 samples); the write-up's padding 5 shrank it to 2, which the
            # adaptive pool then had to stretch to 4.
            nn.Conv1d(256, 256, 11, padding=10, dilation=2), nn.BatchNorm1d(256), nn.LeakyReLU(),
            nn.AdaptiveMaxPool1d(4), nn.Flatten(), nn.Dropout(0.5),
            nn.Linear(256 * 4, 256), nn.LeakyReLU(),
            nn.Linear(256, 128), nn.LeakyReLU(),
            nn.Linear(128, n_classes),
        )

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return self.layers(signals.unsqueeze(1))


def run_net1(task: Task, minutes: float, args) -> Submission:
    """Net1 trained on every training row for as many epochs as end within the budget."""
    deadline = time.monotonic() + minutes * 60
    torch.manual_seed(args.seed)
    torch.set_num_threads(CORES)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    signals = torch.as_tensor(task.train_signals, device=device)
    labels = torch.as_tensor(task.train_labels, device=device)
    model = Net1(task.n_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=NET1_MAX_LR / NET1_DIV_FACTOR, weight_decay=1e-2)
    loss_function = nn.CrossEntropyLoss(label_smoothing=0.05)
    generator = torch.Generator(device=device).manual_seed(args.seed)

    # One-cycle needs the total step count up front, and that depends on the epoch time. So epochs 1 and
    # 2 run at one-cycle's starting rate (max / 25) as a warm-up, and the second is timed (the first
    # also pays for a GPU's start: timed alone, it left a third of a 4-minute budget unused); the
    # schedule then starts from that same rate and spans the epochs that still fit, leaving time to
    # predict the held-out rows (forward passes only: cheaper than training on as many rows, so this
    # reserve is generous).
    train_epoch(model, optimizer, None, signals, labels, loss_function, generator)
    started = time.monotonic()
    train_epoch(model, optimizer, None, signals, labels, loss_function, generator)
    epoch_seconds = time.monotonic() - started
    predict_seconds = epoch_seconds * len(task.held_labels) / len(labels)
    scheduled_epochs = max(0, int((deadline - time.monotonic() - predict_seconds) / epoch_seconds))
    if scheduled_epochs:
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=NET1_MAX_LR, div_factor=NET1_DIV_FACTOR,
            total_steps=scheduled_epochs * (len(labels) // NET1_BATCH))
        for _ in range(scheduled_epochs):
            train_epoch(model, optimizer, scheduler, signals, labels, loss_function, generator)

    model.eval()
    held = torch.as_tensor(task.held_signals, device=device)
    with torch.inference_mode():
        classes = torch.cat([model(batch).argmax(dim=1) for batch in held.split(4096)]).cpu().numpy()
    return Submission(one_hot_values(classes, task.n_classes), classes,
                      {"epochs": 2 + scheduled_epochs, "timed_epoch_s": epoch_seconds, "device": str(device)})


def train_epoch(model: nn.Module, optimizer, scheduler, signals: torch.Tensor, labels: torch.Tensor,
                loss_function, generator: torch.Generator) -> None:
    """One pass over a random permutation of the rows in full batches (the short remainder is dropped:
    a batch of one breaks BatchNorm, and the next permutation covers those rows)."""
    model.train()
    order = torch.randperm(len(labels), device=labels.device, generator=generator)
    for batch in order[: len(order) // NET1_BATCH * NET1_BATCH].view(-1, NET1_BATCH):
        optimizer.zero_grad(set_to_none=True)
        loss_function(model(signals[batch]), labels[batch]).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def run_minirocket(task: Task, minutes: float, args) -> Submission:
    """MiniRocket features, standardised, and a logistic regression fitted by SGD: the classifier the
    ROCKET authors recommend once there are more than ~10,000 training rows (RidgeClassifierCV, aeon's
    default, took over 15 minutes and 15 GB on 80,000 beats)."""
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import SGDClassifier
    from sklearn.preprocessing import StandardScaler

    rocket = MiniRocket(n_jobs=CORES, random_state=args.seed).fit(task.train_signals[:, None, :])
    features = rocket_features(rocket, task.train_signals)
    scaler = StandardScaler()
    for chunk in row_chunks(len(features)):
        scaler.partial_fit(features[chunk])
    standardise_in_place(scaler, features)
    # Early stopping on a 10 % validation split stands in for the authors' early stopping; OvR over the
    # classes runs in threads on the shared float32 array, so nothing is copied.
    classifier = SGDClassifier(loss="log_loss", early_stopping=True, n_iter_no_change=5, max_iter=100,
                               n_jobs=CORES, random_state=args.seed)
    classifier.fit(features, task.train_labels)
    n_features = features.shape[1]
    del features
    held = rocket_features(rocket, task.held_signals)
    standardise_in_place(scaler, held)
    classes = classifier.predict(held)
    return Submission(one_hot_values(classes, task.n_classes), classes,
                      {"features": n_features, "sgd_epochs": int(classifier.n_iter_)})


def rocket_features(rocket, signals: np.ndarray) -> np.ndarray:
    """MiniRocket's float32 features, transformed in chunks to bound the peak memory."""
    chunks = row_chunks(len(signals))
    first = rocket.transform(signals[chunks[0], None, :]).astype(np.float32, copy=False)
    features = np.empty((len(signals), first.shape[1]), dtype=np.float32)
    features[chunks[0]] = first
    for chunk in chunks[1:]:
        features[chunk] = rocket.transform(signals[chunk, None, :])
    return features


def standardise_in_place(scaler, features: np.ndarray) -> None:
    """Applies a fitted StandardScaler chunk by chunk, keeping float32 and no full-size copy."""
    for chunk in row_chunks(len(features)):
        features[chunk] = scaler.transform(features[chunk])


def row_chunks(n_rows: int) -> list[slice]:
    """Consecutive row ranges of at most ROCKET_CHUNK_ROWS rows."""
    return [slice(start, start + ROCKET_CHUNK_ROWS) for start in range(0, n_rows, ROCKET_CHUNK_ROWS)]


def run_lightgbm(task: Task, minutes: float, args) -> Submission:
    """Gradient-boosted trees on the raw samples, with common settings rather than tuned ones."""
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(n_estimators=600, learning_rate=0.1, num_leaves=63, subsample=0.8, subsample_freq=1,
                           colsample_bytree=0.8, n_jobs=CORES, random_state=args.seed, verbose=-1)
    model.fit(task.train_signals, task.train_labels)
    classes = model.predict(task.held_signals)
    return Submission(one_hot_values(classes, task.n_classes), classes)


def one_hot_values(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """The submission of a method that answers with one class per row."""
    from ecgtune.metrics import one_hot

    return one_hot(classes, n_classes)


def describe_machine() -> dict:
    """Date, cores, CPU model and library versions, for the record."""
    cpu = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    versions = {}
    for package in ("torch", "scikit-learn", "aeon", "lightgbm", "ray"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "nproc": CORES, "cpu": cpu,
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None, "versions": versions}


RUNNERS = {"ecgtune": run_ecgtune, "net1": run_net1, "minirocket": run_minirocket, "lightgbm": run_lightgbm}

if __name__ == "__main__":
    main()
