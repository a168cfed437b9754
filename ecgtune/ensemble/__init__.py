"""Ensembles (numpy only): greedy selection of checkpoints and the L1-optimal decision rule."""

from ecgtune.ensemble.build import SCORE_TITLES, build_ensemble
from ecgtune.ensemble.decision import FALLBACKS, DecisionRule, cross_fitted_abs_sum, fit_decision_rule
from ecgtune.ensemble.library import Member, load_fold_library, load_library
from ecgtune.ensemble.selection import EnsembleSelection

__all__ = [
    "FALLBACKS", "SCORE_TITLES", "DecisionRule", "EnsembleSelection", "Member", "build_ensemble",
    "cross_fitted_abs_sum", "fit_decision_rule", "load_fold_library", "load_library",
]
