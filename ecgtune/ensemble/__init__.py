"""Ensembles (numpy only): greedy selection of checkpoints and the L1-optimal decision rule."""

from ecgtune.ensemble.build import build_ensemble
from ecgtune.ensemble.decision import (
    FALLBACKS,
    DecisionRule,
    argmax_rule,
    cross_fitted_abs_sum,
    fit_decision_rule,
    honest_decision_rule,
)
from ecgtune.ensemble.library import Member, load_fold_library, load_library
from ecgtune.ensemble.selection import EnsembleSelection
from ecgtune.ensemble.summary import SCORES, ChosenMember, EnsembleSummary

__all__ = [
    "FALLBACKS", "SCORES", "ChosenMember", "DecisionRule", "EnsembleSelection", "EnsembleSummary", "Member",
    "argmax_rule", "build_ensemble", "cross_fitted_abs_sum", "fit_decision_rule", "honest_decision_rule",
    "load_fold_library", "load_library",
]
