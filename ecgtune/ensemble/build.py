"""From a library of checkpoints to an ensemble with its decision rule, and the scores that say how
much each step gained (numpy only)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ecgtune.ensemble.decision import honest_decision_rule
from ecgtune.ensemble.library import Member
from ecgtune.ensemble.selection import EnsembleSelection
from ecgtune.ensemble.summary import ChosenMember, EnsembleSummary
from ecgtune.metrics import abs_sum, argmax_decisions, log_loss, threshold_decisions


def build_ensemble(members: Sequence[Member], labels: np.ndarray, *, size: int = 25, bagging_rounds: int = 0,
                   rule_folds: int = 5, seed: int = 0, max_members: int | None = None,
                   cost_limit: float | None = None,
                   member_cost: Callable[[Member], float] | None = None) -> tuple[EnsembleSummary, np.ndarray]:
    """Selects the ensemble on the validation rows, learns its decision rule, and scores every stage;
    returns its summary and the ensemble's validation probabilities.

    All scores are validation abs-sums. What ships is never worse on these rows than the best single
    member with its own decision rule: if the ensemble is, that member alone is the ensemble. Member
    selection used these same rows, so every ensemble figure is optimistic; the cross-fitted one
    removes the optimism of the thresholds (fitted on K-1 folds, scored on the held-out fold), and
    decides whether learned thresholds ship at all (`honest_decision_rule`). With `member_cost` (a
    deterministic cost per member, such as its multiply-accumulates), the chosen members' costs and
    their sum are in the summary, and `cost_limit` bounds that sum; with a limit, the summary also says
    what the ensemble would have scored without it.
    """
    library = np.stack([member.val_probs for member in members])
    cost_by_index = None if member_cost is None else lambda index: member_cost(members[index])
    options = {"size": size, "bagging_rounds": bagging_rounds, "random_state": seed}
    selector = EnsembleSelection(**options, max_members=max_members, cost_limit=cost_limit).fit(
        library, labels, cost_by_index)
    weights = selector.weights_

    def rule_for(probs: np.ndarray) -> tuple:
        return honest_decision_rule(probs, labels, rule_folds, seed)

    blended = np.tensordot(weights, library, axes=1)
    rule, cross_fitted = rule_for(blended)
    start = selector.start_
    single_rule, single_cross_fitted = rule_for(library[start])
    single_score = abs_sum(single_rule.decide(library[start]), labels)
    fell_back = abs_sum(rule.decide(blended), labels) > single_score
    if fell_back:
        weights, blended, rule = np.eye(len(members))[start], library[start], single_rule
        cross_fitted = single_cross_fitted
    best_index = int(np.argmin([member.val_abs_sum for member in members]))  # the first of equals
    best = library[best_index]
    best_rule = single_rule if start == best_index else rule_for(best)[0]
    scores = {
        "best_single_argmax": abs_sum(argmax_decisions(best), labels),
        "best_single_median_rule": abs_sum(threshold_decisions(best), labels),
        "best_single_learned_rule": abs_sum(best_rule.decide(best), labels),
        "ensemble_argmax": abs_sum(argmax_decisions(blended), labels),
        "ensemble_median_rule": abs_sum(threshold_decisions(blended), labels),
        "ensemble_learned_rule": abs_sum(rule.decide(blended), labels),
        "ensemble_learned_rule_cross_fitted": cross_fitted,
    }
    if max_members is not None or cost_limit is not None:
        free_blend = np.tensordot(EnsembleSelection(**options).fit(library, labels).weights_, library, axes=1)
        free_rule = rule_for(free_blend)[0]
        scores["unlimited_ensemble_learned_rule"] = min(abs_sum(free_rule.decide(free_blend), labels),
                                                        scores["best_single_learned_rule"])
    chosen = []
    for index in map(int, np.flatnonzero(weights > 0)):
        member, cost = members[index], None
        if cost_by_index is not None:  # selection priced the members it considered under a limit
            cost = selector.costs_[index] if index in selector.costs_ else cost_by_index(index)
        chosen.append(ChosenMember(trial=member.trial, family=member.family,
                                   checkpoints=[str(path) for path in member.checkpoints], weight=float(weights[index]),
                                   val_abs_sum=member.val_abs_sum, val_log_loss=member.val_log_loss, cost=cost))
    summary = EnsembleSummary(
        members=sorted(chosen, key=lambda member: -member.weight), decision_rule=rule, scores=scores,
        validation_rows=int(len(labels)), ensemble_log_loss=log_loss(blended, labels),
        trajectory=selector.trajectory_, kept_steps=None if fell_back else selector.kept_steps_,
        fell_back_to_best_single=bool(fell_back), library=[member.trial for member in members])
    if cost_by_index is not None:
        summary.cost, summary.cost_limit = sum(member.cost for member in chosen), cost_limit
    return summary, blended
