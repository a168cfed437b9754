"""Ensemble selection from a library of models (Caruana et al., 2004), as a small numpy estimator.

Greedy forward selection with replacement. It starts from the best member (lowest validation abs-sum
of argmax decisions, ties by log-loss, then by member index: the leaderboard's order) and repeatedly
adds the member whose addition gives the lowest abs-sum, ties broken the same way.

A step is kept only when it helps by more than noise: a paired bootstrap over the validation rows
must find it better than the last kept ensemble in at least `min_confidence` of its resamples.
Otherwise selection would fit the noise of the rows it is scored on. The kept ensemble is therefore
never worse on these rows than the best single member, and a member joins only when its gain is
unlikely to be luck.

Optional bagging repeats the selection on random subsets of the members and averages the weights.

The cost of predicting can be bounded: at most `max_members` distinct members, and distinct members
whose costs (given by a function, asked only for the members the selection would add) sum to at most
`cost_limit`. A member that does not fit is passed over for the next best; when no member fits on its
own, the ensemble is the cheapest member alone. With bagging, the rounds re-weight the members that a
plain selection kept within these limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgtune.errors import ConfigError
from ecgtune.metrics import EPSILON

BAGGING_FRACTION = 0.5  # share of the members each bagging round sees


@dataclass
class EnsembleSelection:
    """Greedy ensemble selection. After `fit`, `weights_` (one per member, summing to 1),
    `trajectory_` (one entry per step: member added, abs-sum, log-loss, and whether the step was kept
    as a significant gain; every bagging round's steps one after another), `kept_steps_` (how many
    steps the ensemble kept; None with bagging) and `costs_` (the costs asked for, by member) are set."""

    size: int = 25                  # selection steps (members may be chosen more than once)
    min_confidence: float = 0.9     # bootstrap share of resamples in which a kept step must be better
    bootstrap_rounds: int = 1000
    bagging_rounds: int = 0         # >0: average the weights of this many selections on member subsets
    max_members: int | None = None  # at most this many distinct members
    cost_limit: float | None = None   # distinct members' costs sum to at most this (see `fit`)
    random_state: int = 0

    def fit(self, member_probs: np.ndarray, labels: np.ndarray,
            member_cost: Callable[[int], float] | None = None) -> EnsembleSelection:
        """member_probs: (members, rows, classes) validation probabilities; labels: (rows,);
        member_cost: the cost of a member by its index (needed with `cost_limit`)."""
        member_probs = np.asarray(member_probs, dtype=np.float64)
        _check_members(member_probs, labels)
        if self.cost_limit is not None and member_cost is None:
            raise ConfigError("cost_limit needs the members' costs")
        budget = _Budget(self.max_members, self.cost_limit, member_cost)
        candidates = np.arange(member_probs.shape[0])
        self.start_ = int(self._first(member_probs, labels, candidates, budget))
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
        subset_size = max(1, int(round(BAGGING_FRACTION * len(pool))))
        counts, trajectory = np.zeros(member_probs.shape[0]), []
        for _ in range(self.bagging_rounds):
            subset = np.sort(rng.choice(pool, size=subset_size, replace=False))
            round_counts, round_trajectory, _ = self._select(member_probs, labels, subset, _Budget(None, None, None))
            counts += round_counts / round_counts.sum()
            trajectory += round_trajectory
        return counts, trajectory

    @staticmethod
    def _first(member_probs: np.ndarray, labels: np.ndarray, candidates: np.ndarray, budget: _Budget) -> int:
        """The best single member within the limits, or the cheapest one when none fits."""
        singles = _scores(member_probs[candidates], labels)
        ranked = candidates[np.lexsort((candidates, singles[:, 1], singles[:, 0]))]
        first = next((member for member in ranked if budget.admits(member, [])), None)
        return min(candidates, key=budget.cost) if first is None else first

    def _select(self, member_probs: np.ndarray, labels: np.ndarray, candidates: np.ndarray, budget: _Budget):
        first = self._first(member_probs, labels, candidates, budget)
        chosen, total = [first], member_probs[first].copy()
        kept, kept_errors = 0, _row_errors(total[None], labels)[0]
        rng = np.random.default_rng(self.random_state)
        trajectory = [_step(first, *_scores(total[None], labels)[0], kept=True)]
        for _ in range(self.size - 1):
            blended = (total[None] + member_probs[candidates]) / (len(chosen) + 1)
            scores = _scores(blended, labels)
            best = next((index for index in np.lexsort((candidates, scores[:, 1], scores[:, 0]))
                         if budget.admits(candidates[index], chosen)), None)
            if best is None:
                break
            chosen.append(candidates[best])
            total += member_probs[candidates[best]]
            errors = _row_errors(blended[best][None], labels)[0]
            significant = self._confidence(errors - kept_errors, rng) >= self.min_confidence
            if significant:
                kept, kept_errors = len(chosen) - 1, errors
            trajectory.append(_step(candidates[best], *scores[best], kept=significant))
        counts = np.bincount(chosen[:kept + 1], minlength=member_probs.shape[0]).astype(np.float64)
        return counts, trajectory, kept + 1

    def _confidence(self, differences: np.ndarray, rng: np.random.Generator) -> float:
        """Share of bootstrap resamples of the rows in which the summed per-row differences (new minus
        kept) are negative: only the rows that differ matter, so their resampled counts are drawn from
        the multinomial over all rows."""
        changed = np.flatnonzero(differences)
        if changed.size == 0:
            return 0.0
        n_rows = len(differences)
        shares = np.append(np.full(changed.size, 1.0 / n_rows), 1.0 - changed.size / n_rows)
        counts = rng.multinomial(n_rows, np.clip(shares, 0.0, 1.0), size=self.bootstrap_rounds)[:, :-1]
        return float(((counts @ differences[changed]) < 0).mean())


class _Budget:
    """Which members may join a selection: its distinct members stay within the member cap and the cost
    limit. Each member's cost is asked once, when first needed."""

    def __init__(self, max_members: int | None, cost_limit: float | None, member_cost):
        self.max_members, self.cost_limit, self.member_cost = max_members, cost_limit, member_cost
        self.costs: dict[int, float] = {}

    @property
    def limits(self) -> bool:
        return self.max_members is not None or self.cost_limit is not None

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
        return self.cost_limit is None or sum(map(self.cost, distinct | {member})) <= self.cost_limit


def _step(member, abs_sum: float, log_loss: float, kept: bool) -> dict:
    return {"member": int(member), "abs_sum": float(abs_sum), "log_loss": float(log_loss), "kept": bool(kept)}


def _row_errors(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(candidates, rows): each row's abs-sum under argmax decisions, 0 when right and 2 when wrong."""
    return 2.0 * (probs.argmax(axis=2) != labels[None])


def _scores(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(candidates, 2): abs-sum of argmax decisions, and log-loss, of each candidate's probabilities."""
    true_class = probs[:, np.arange(probs.shape[1]), labels]
    log_losses = -np.log(np.clip(true_class, EPSILON, 1.0)).mean(axis=1)
    return np.stack([_row_errors(probs, labels).sum(axis=1), log_losses], axis=1)


def _check_members(member_probs: np.ndarray, labels: np.ndarray) -> None:
    if member_probs.ndim != 3 or member_probs.shape[1] != len(labels):
        raise ConfigError(f"member probabilities of shape {member_probs.shape} do not match {len(labels)} labels")
    bad = ~np.isfinite(member_probs).all(axis=(1, 2))
    if bad.any():
        raise ConfigError(f"member {int(np.argmax(bad))} has NaN or infinite probabilities; it cannot join an ensemble")
