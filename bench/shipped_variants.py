"""What else the ensemble of a finished run could ship, scored on the same held-out real ECG: what ships
(refit networks, and search networks where a member was not refit), the search's networks the refit
replaced, both averaged, test-time shifts, and networks of other configurations averaged in; each
member alone where there are several.

Reads RUN_DIR/ensemble.json of a `bench/budget_comparison.py` run (its members' checkpoints, and the
search's where a member was refit), rebuilds that run's held-out beats from --seed, and prints the abs-sum per
20,000 held-out beats and the accuracy of each variant, with the run's own decision rule and member
weights. --partners takes held-out probabilities that `bench/refit_seeds.py` kept (other
configurations, trained on the same rows): each is averaged, as one more network, with each refit
network of a one-member ensemble and with all of them. A network's held-out probabilities are kept in
OUT, so that a rerun predicts nothing twice.

    python bench/shipped_variants.py RUN_DIR [--seed 0] [--shifts 1 2] [--partners NPY ...]
        [--mitbih FILE] [--out bench/out/shipped_variants]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from ecgtune.ensemble.summary import EnsembleSummary
from ecgtune.export import load_member
from ecgtune.metrics import abs_sum

from budget_comparison import COMPETITION_TEST_ROWS, add_task_arguments, prepare_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="an experiment folder of bench/budget_comparison.py")
    parser.add_argument("--shifts", type=int, nargs="*", default=[1, 2],
                        help="test-time shifts, in samples: each averages the beats moved by -s, 0 and +s")
    parser.add_argument("--partners", type=Path, nargs="*", default=[],
                        help="held-out probabilities (.npy) of networks from bench/refit_seeds.py, same split")
    add_task_arguments(parser, "shipped_variants")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    task, _ = prepare_task(args, write_train_file=False)
    summary = EnsembleSummary.from_dict(json.loads((args.run_dir / "ensemble.json").read_text()))
    signals = torch.from_numpy(task.held_signals)

    def probs(checkpoint: str, shift: int = 0) -> np.ndarray:
        cached = args.out / f"{Path(checkpoint).parent.parent.name}_{Path(checkpoint).parent.name}_shift{shift}.npy"
        if not cached.is_file():
            network, _ = load_member(Path(checkpoint))
            with torch.no_grad():
                np.save(cached, network(shifted(signals, shift)).softmax(dim=1).numpy())
        return np.load(cached)

    def score(title: str, networks: list[list[np.ndarray]], weights: list[float] | None = None) -> None:
        """The run's weights over members (or `weights`), each member the average of its `networks`'
        probabilities."""
        weights = weights or [member.weight for member in summary.members]
        averaged = sum(weight * np.mean(of, axis=0) for weight, of in zip(weights, networks))
        values = summary.decision_rule.decide(averaged)
        scaled = abs_sum(values, task.held_labels) * COMPETITION_TEST_ROWS / len(task.held_labels)
        print(f"| {title} | {scaled:.1f} | {(averaged.argmax(axis=1) == task.held_labels).mean():.4f} |")

    if args.partners and len(summary.members) > 1:
        raise SystemExit("--partners: the run's ensemble must have one member, which the partners join")
    refit = [[probs(path) for path in member.checkpoints] for member in summary.members]
    # a member that was not refit ships its search network
    search = [[probs(path) for path in member.search_checkpoints or member.checkpoints] for member in summary.members]
    for member, networks in zip(summary.members, refit):
        refit_networks = len(networks) if member.search_checkpoints else 0
        print(f"{member.trial}: weight {member.weight:.3f}, {refit_networks} refit network(s)")
    print("\n| variant | per 20,000 held-out | accuracy |\n| --- | ---: | ---: |")
    score("what ships", refit)
    if len(refit) > 1:
        for member, networks in zip(summary.members, refit):
            score(f"{member.trial}'s network(s) alone", [networks], weights=[1.0])
    seeds = min(len(networks) for networks in refit)
    if seeds > 1:
        for seed in range(seeds):
            score(f"refit network {seed + 1} alone", [[networks[seed]] for networks in refit])
    score("search networks", search)
    score("refit and search networks", [mine + theirs for mine, theirs in zip(refit, search)])
    for shift in args.shifts:
        score(f"refit networks, shifts -{shift}, 0, +{shift}",
              [[probs(path, moved) for path in member.checkpoints for moved in (-shift, 0, shift)]
               for member in summary.members])
    for partner in args.partners:
        other = np.load(partner)
        for seed in range(seeds):
            score(f"refit network {seed + 1} and {partner.stem}", [[refit[0][seed], other]])
        score(f"refit networks and {partner.stem}", [refit[0] + [other]])


def shifted(signals: torch.Tensor, shift: int) -> torch.Tensor:
    """The beats moved `shift` samples later (earlier where negative), zeros filling the gap."""
    moved = torch.zeros_like(signals)
    if shift > 0:
        moved[:, shift:] = signals[:, :-shift]
    elif shift < 0:
        moved[:, :shift] = signals[:, -shift:]
    else:
        moved[:] = signals
    return moved


if __name__ == "__main__":
    main()
