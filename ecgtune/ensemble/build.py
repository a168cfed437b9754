"""From a library of checkpoints to an ensemble with its decision rule, and the scores that say how
much each step gained (numpy only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ecgtune.ensemble.decision import cross_fitted_abs_sum, fit_decision_rule
from ecgtune.ensemble.library import Member
from ecgtune.ensemble.selection import EnsembleSelection
from ecgtune.metrics import abs_sum, argmax_decisions, log_loss, threshold_decisions

SCORE_TITLES = {
    "best_single_argmax": "best single member, argmax",
    "best_single_median_rule": "best single member, 0.5 rule",
    "ensemble_argmax": "ensemble, argmax",
    "ensemble_median_rule": "ensemble, 0.5 rule",
    "ensemble_learned_rule": "ensemble, learned rule (fitted on these rows)",
    "ensemble_learned_rule_cross_fitted": "ensemble, learned rule cross-fitted (honest for the rule)",
}


def build_ensemble(members: Sequence[Member], labels: np.ndarray, size: int = 25, bagging_rounds: int = 0,
                   decision_folds: int = 5, seed: int = 0, max_members: int | None = None,
                   max_cost: float | None = None,
                   member_cost: Callable[[Member], float] | None = None) -> tuple[dict, np.ndarray]:
    """Selects the ensemble on the validation rows, learns its decision rule, and scores every stage;
    returns the summary (JSON-ready) and the ensemble's validation probabilities.

    All scores are validation abs-sums. Member selection used these same rows, so every ensemble figure
    is optimistic; the cross-fitted one removes the optimism of the thresholds (fitted on K-1 folds,
    scored on the held-out fold). With `member_cost` (say, the time a member takes to predict), the
    chosen members' costs and their sum are in the summary, and `max_cost` bounds that sum.
    """
    library = np.stack([member.val_probs for member in members])
    cost_by_index = None if member_cost is None else lambda index: member_cost(members[index])
    selector = EnsembleSelection(size=size, bagging_rounds=bagging_rounds, max_members=max_members,
                                 max_cost=max_cost, random_state=seed).fit(library, labels, cost_by_index)
    blended = selector.predict_proba(library)
    rule = fit_decision_rule(blended, labels)
    best = library[0]
    scores = {
        "best_single_argmax": abs_sum(argmax_decisions(best), labels),
        "best_single_median_rule": abs_sum(threshold_decisions(best), labels),
        "ensemble_argmax": abs_sum(argmax_decisions(blended), labels),
        "ensemble_median_rule": abs_sum(threshold_decisions(blended), labels),
        "ensemble_learned_rule": abs_sum(rule.decide(blended), labels),
        "ensemble_learned_rule_cross_fitted": cross_fitted_abs_sum(blended, labels, decision_folds, seed),
    }
    chosen = [
        {"trial": member.trial, "family": member.family, "checkpoints": [str(path) for path in member.checkpoints],
         "weight": float(selector.weights_[index]), "val_abs_sum": member.val_abs_sum,
         "val_log_loss": member.val_log_loss}
        for index, member in enumerate(members) if selector.weights_[index] > 0
    ]
    if cost_by_index is not None:
        for index, described in zip(np.flatnonzero(selector.weights_ > 0), chosen):
            described["cost"] = selector.costs_[index] if index in selector.costs_ else cost_by_index(index)
    summary = {
        "members": sorted(chosen, key=lambda m: -m["weight"]),
        "decision_rule": rule.to_dict(),
        "scores": scores,
        "validation_rows": int(len(labels)),
        "ensemble_log_loss": log_loss(blended, labels),
        "trajectory": selector.trajectory_,
        "kept_steps": selector.kept_steps_,
        "library": [member.trial for member in members],
    }
    if cost_by_index is not None:
        summary.update(cost=sum(member["cost"] for member in chosen), cost_limit=max_cost)
    return summary, blended
