"""Search efficiency: Optuna's TPE + ASHA early stopping vs random search without early stopping, at the
same wall-clock budget, over several seeds. Draws the best validation abs-sum over time (a PNG) and
prints, per seed, how long each needed to reach the random search's final best.

    python bench/search_efficiency.py [--minutes 3] [--seeds 0 1 2] [--rows 4000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = {"optuna + asha": ("optuna", "asha"), "random, no early stopping": ("random", "fifo")}


def run_search(strategy: str, seed: int, args, runs_dir: Path) -> Path:
    """Runs one search (or reuses the finished one of the same name: delete --out to start afresh)."""
    searcher, scheduler = STRATEGIES[strategy]
    name = f"{searcher}-{scheduler}-seed{seed}"
    if not (runs_dir / name / "leaderboard.csv").exists():
        subprocess.run([sys.executable, str(ROOT / "search.py"), "--arch", "all", "--rows", str(args.rows),
                        "--seed", str(seed), "--searcher", searcher, "--scheduler", scheduler,
                        "--time-budget", str(args.minutes), "--max-epochs", str(args.max_epochs),
                        "--num-samples", "1000", "--runs-dir", str(runs_dir), "--name", name],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return runs_dir / name


def best_over_time(run_dir: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Seconds since the search's first trial started, the best validation abs-sum reached by then, and
    the number of trials that reported."""
    from ecgtune.html_report import read_histories

    histories = read_histories(run_dir)
    start = min(records[0]["timestamp"] - records[0]["time_total_s"] for records in histories.values())
    points = sorted((r["timestamp"] - start, r["val_abs_sum"]) for rs in histories.values() for r in rs)
    times = np.array([t for t, _ in points], dtype=float)
    return times, np.minimum.accumulate([s for _, s in points]), len(histories)


def time_to_reach(times: np.ndarray, best: np.ndarray, target: float) -> float:
    """Seconds until the running best first reaches `target` (NaN if never)."""
    reached = np.flatnonzero(best <= target)
    return float(times[reached[0]]) if reached.size else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="wall-clock budget of each search")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rows", type=int, default=4000, help="synthetic rows")
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    curves = {(strategy, seed): best_over_time(run_search(strategy, seed, args, args.out / "search_efficiency"))
              for seed in args.seeds for strategy in STRATEGIES}
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for colour, strategy in zip(("#4e79a7", "#e15759"), STRATEGIES):
        for seed in args.seeds:
            times, best, _ = curves[strategy, seed]
            axes.step(times / 60, best, where="post", color=colour, alpha=0.8,
                      label=strategy if seed == args.seeds[0] else None)
    axes.set(xlabel="minutes", ylabel="best validation abs-sum so far", yscale="log",
             title=f"Search efficiency, {args.rows} synthetic rows, {len(args.seeds)} seeds")
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.out / "search_efficiency.png", dpi=110)

    print(f"{'seed':>4}  {'trials (random / optuna)':>24}  {'random final best':>17}  {'optuna final best':>17}  "
          f"{'random reaches it':>17}  {'optuna reaches it':>17}")
    for seed in args.seeds:
        random_times, random_best, random_trials = curves["random, no early stopping", seed]
        optuna_times, optuna_best, optuna_trials = curves["optuna + asha", seed]
        target = random_best[-1]
        reach = [time_to_reach(times, best, target) for times, best in ((random_times, random_best),
                                                                       (optuna_times, optuna_best))]
        print(f"{seed:>4}  {f'{random_trials} / {optuna_trials}':>24}  {target:>17.0f}  {optuna_best[-1]:>17.0f}  "
              + "  ".join(f"{'never' if np.isnan(t) else f'{t:.0f}s':>17}" for t in reach))
    print(f"plot: {args.out / 'search_efficiency.png'}")


if __name__ == "__main__":
    main()
