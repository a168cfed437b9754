"""Ensembles (numpy only): greedy selection of checkpoints and the L1-optimal decision rule."""

from ecgtune.ensemble.decision import FALLBACKS, DecisionRule, cross_fitted_abs_sum, fit_decision_rule
from ecgtune.ensemble.selection import EnsembleSelection

__all__ = ["FALLBACKS", "DecisionRule", "EnsembleSelection", "cross_fitted_abs_sum", "fit_decision_rule"]
