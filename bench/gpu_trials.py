"""How many trials should share one GPU? Training throughput of each family with 1, 2, 4 and 8 trials
training at once on the same GPU, each trial its own process as a Ray trial is.

Every trial trains its family with the ecgtune trainer (device-resident rows, batch 256) on synthetic
205-sample beats: one warm-up epoch, a barrier so that all trials measure at the same time, then timed
epochs. Reports samples/s per trial and summed over the trials, with the sum's gain over one trial, for
the write-up's sizes and the compact starting points. The `--gpus-per-trial` default follows from it.

    python bench/gpu_trials.py [--families all] [--trials 1 2 4 8] [--sizes write-up compact] [--rows 16384]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import torch


def trial(family: str, size: str, rows: int, epochs: int, device: str, barrier, results) -> None:
    """One trial's process: warm up, wait for the others, then time `epochs` epochs of training."""
    from ecgtune.data import Fold, make_synthetic
    from ecgtune.search_spaces.families import COMPACT
    from ecgtune.trainer import TrainConfig, train_family

    torch.set_num_threads(1)
    beats = make_synthetic(rows + 1024, seed=0)
    fold = Fold(beats.signals[:rows], beats.labels[:rows], beats.signals[rows:], beats.labels[rows:], n_classes=4)
    config = COMPACT[family] if size == "compact" else {}
    train_family(family, fold, config, TrainConfig(epochs=1, device=device))
    barrier.wait()
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    synchronize()
    start = time.perf_counter()
    train_family(family, fold, config, TrainConfig(epochs=epochs, device=device))
    synchronize()
    results.put(rows * epochs / (time.perf_counter() - start))


def measure(family: str, size: str, n_trials: int, rows: int, epochs: int, device: str) -> list[float]:
    """Samples/s of each of `n_trials` processes training `family` at once on the GPU."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(n_trials), context.Queue()
    processes = [context.Process(target=trial, args=(family, size, rows, epochs, device, barrier, results))
                 for _ in range(n_trials)]
    for process in processes:
        process.start()
    speeds = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    return speeds


def main() -> None:
    from ecgtune.models import list_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="all")
    parser.add_argument("--trials", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--sizes", nargs="+", default=["write-up", "compact"], choices=["write-up", "compact"])
    parser.add_argument("--rows", type=int, default=16384, help="training rows per trial")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per trial")
    parser.add_argument("--device", default="cuda", help="cuda, or cpu for a dry run")
    args = parser.parse_args()
    families = list_models() if args.families == "all" else args.families.split(",")
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"{time.strftime('%Y-%m-%d')}: {device}, torch {torch.__version__}, "
          f"{args.rows} rows x {args.epochs} timed epochs per trial, batch 256, 1 CPU thread per trial")
    print("| family | size | trials | samples/s per trial | samples/s, all trials | gain over 1 trial |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for family in families:
        for size in args.sizes:
            single = None
            for n_trials in args.trials:
                speeds = measure(family, size, n_trials, args.rows, args.epochs, args.device)
                total = sum(speeds)
                single = single or total / n_trials
                print(f"| {family} | {size} | {n_trials} | {total / n_trials:,.0f} | {total:,.0f} | "
                      f"{total / single:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
