"""Ensemble selection from a library of models (Caruana et al., 2004), as a small numpy estimator.

Greedy forward selection with replacement: start from the N best members, then repeatedly add the
member whose addition gives the lowest validation abs-sum after the decision rule (0.5 thresholds,
all-zero fallback), ties broken by log-loss and then by member index. The ensemble kept is the best
point of the trajectory, so it is never worse on the selection data than the best single member.
Optional bagging repeats the selection on random subsets of the members and averages the weights.

The cost of predicting can be bounded: at most `max_members` distinct members, and distinct members
whose costs (given by a function, asked only for the members the selection would add) sum to at most
`max_cost`. A member that does not fit is passed over for the next best; when no member fits on its
own, the ensemble is the cheapest member alone. With bagging, the rounds re-weight the members that a
plain selection kept within these limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgtune.errors import ConfigError
from ecgtune.metrics import one_hot, threshold_decisions


@dataclass
class EnsembleSelection:
    """Greedy ensemble selection. After `fit`, `weights_` (one per member, summing to 1),
    `trajectory_` (one entry per step: member added, abs-sum, log-loss; every bagging round's steps one
    after another), `kept_steps_` (how many steps the ensemble kept; None with bagging) and `costs_`
    (the costs asked for, by member) are set."""

    size: int = 25                  # selection steps (members may be chosen more than once)
    n_init: int = 1                 # start from the n_init best single members
    bagging_rounds: int = 0         # >0: average the weights of this many selections on member subsets
    bagging_fraction: float = 0.5   # share of the members each bagging round sees
    max_members: int | None = None  # at most this many distinct members
    max_cost: float | None = None   # distinct members' costs sum to at most this (see `fit`)
    random_state: int = 0

    def fit(self, member_probs: np.ndarray, labels: np.ndarray,
            member_cost: Callable[[int], float] | None = None) -> EnsembleSelection:
        """member_probs: (members, rows, classes) validation probabilities; labels: (rows,);
        member_cost: the cost of a member by its index (needed with `max_cost`)."""
        member_probs = np.asarray(member_probs, dtype=np.float64)
        _check_members(member_probs, labels)
        if self.max_cost is not None and member_cost is None:
            raise ConfigError("max_cost needs the members' costs")
        budget = _Budget(self.max_members, self.max_cost, member_cost)
        candidates = np.arange(member_probs.shape[0])
        if self.bagging_rounds <= 0:
            counts, self.trajectory_, self.kept_steps_ = self._select(member_probs, labels, candidates, budget)
        else:
            if budget.limits:  # bagging re-weights the members a plain selection kept within the limits
                candidates = np.flatnonzero(self._select(member_probs, labels, candidates, budget)[0])
            counts, self.trajectory_ = self._bag(member_probs, labels, candidates)
            self.kept_steps_ = None
        self.weights_ = counts / counts.sum()
        self.costs_ = {int(member): cost for member, cost in budget.costs.items()}
        return self

    def predict_proba(self, member_probs: np.ndarray) -> np.ndarray:
        """Weighted average of the members' probabilities."""
        return np.tensordot(self.weights_, np.asarray(member_probs, dtype=np.float64), axes=1)

    def _bag(self, member_probs: np.ndarray, labels: np.ndarray, pool: np.ndarray):
        rng = np.random.default_rng(self.random_state)
        subset_size = max(1, int(round(self.bagging_fraction * len(pool))))
        counts, trajectory = np.zeros(member_probs.shape[0]), []
        for _ in range(self.bagging_rounds):
            subset = np.sort(rng.choice(pool, size=subset_size, replace=False))
            round_counts, round_trajectory, _ = self._select(member_probs, labels, subset, _Budget(None, None, None))
            counts += round_counts / round_counts.sum()
            trajectory += round_trajectory
        return counts, trajectory

    def _select(self, member_probs: np.ndarray, labels: np.ndarray, candidates: np.ndarray, budget: _Budget):
        target = one_hot(labels, member_probs.shape[2])
        singles = _scores(member_probs[candidates], labels, target)
        chosen = []
        for member in candidates[np.lexsort((candidates, singles[:, 1], singles[:, 0]))]:
            if len(chosen) == max(1, self.n_init):
                break
            if budget.admits(member, chosen):
                chosen.append(member)
        if not chosen:
            chosen = [min(candidates, key=budget.cost)]  # nothing fits: the cheapest member alone
        total = member_probs[chosen].sum(axis=0)
        trajectory = []
        for count in range(1, len(chosen) + 1):
            running = member_probs[chosen[:count]].mean(axis=0)[None]
            trajectory.append(_step(chosen[count - 1], *_scores(running, labels, target)[0]))
        for _ in range(max(0, self.size - len(chosen))):
            blended = (total[None] + member_probs[candidates]) / (len(chosen) + 1)
            scores = _scores(blended, labels, target)
            best = next(index for index in np.lexsort((candidates, scores[:, 1], scores[:, 0]))
                        if budget.admits(candidates[index], chosen))
            chosen.append(candidates[best])
            total += member_probs[candidates[best]]
            trajectory.append(_step(candidates[best], *scores[best]))
        best_prefix = min(range(len(trajectory)),
                          key=lambda i: (trajectory[i]["abs_sum"], trajectory[i]["log_loss"], i))
        counts = np.bincount(chosen[:best_prefix + 1], minlength=member_probs.shape[0]).astype(np.float64)
        return counts, trajectory, best_prefix + 1


class _Budget:
    """Which members may join a selection: its distinct members stay within the member cap and the cost
    limit. Each member's cost is asked once, when first needed."""

    def __init__(self, max_members: int | None, max_cost: float | None, member_cost):
        self.max_members, self.max_cost, self.member_cost = max_members, max_cost, member_cost
        self.costs: dict[int, float] = {}

    @property
    def limits(self) -> bool:
        return self.max_members is not None or self.max_cost is not None

    def cost(self, member: int) -> float:
        if member not in self.costs:
            self.costs[member] = float(self.member_cost(int(member)))
        return self.costs[member]

    def admits(self, member: int, chosen: list) -> bool:
        distinct = set(chosen)
        if member in distinct:
            return True
        if self.max_members is not None and len(distinct) >= max(1, self.max_members):
            return False
        return self.max_cost is None or sum(map(self.cost, distinct | {member})) <= self.max_cost


def _step(member, abs_sum: float, log_loss: float) -> dict:
    return {"member": int(member), "abs_sum": float(abs_sum), "log_loss": float(log_loss)}


def _scores(probs: np.ndarray, labels: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(candidates, 2): abs-sum after the 0.5 decision rule, and log-loss, of each candidate's probabilities."""
    n_candidates, n_rows, n_classes = probs.shape
    decisions = threshold_decisions(probs.reshape(-1, n_classes)).reshape(probs.shape)
    abs_sums = np.abs(decisions - target[None]).sum(axis=(1, 2))
    true_class = probs[:, np.arange(n_rows), labels]
    log_losses = -np.log(np.clip(true_class, 1e-7, 1.0)).mean(axis=1)
    return np.stack([abs_sums, log_losses], axis=1)


def _check_members(member_probs: np.ndarray, labels: np.ndarray) -> None:
    if member_probs.ndim != 3 or member_probs.shape[1] != len(labels):
        raise ConfigError(f"member probabilities of shape {member_probs.shape} do not match {len(labels)} labels")
    bad = ~np.isfinite(member_probs).all(axis=(1, 2))
    if bad.any():
        raise ConfigError(f"member {int(np.argmax(bad))} has NaN or infinite probabilities; it cannot join an ensemble")
