"""The ensemble's summary, RUNS_DIR/NAME/ensemble.json: the members chosen, the decision rule, every
score with what it can be trusted for, and what the refit or the cross-fitting did (numpy only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ecgtune.ensemble.decision import FALLBACKS, DecisionRule

SELECTION, HONEST_FOR_THE_RULE = "selection", "honest for the rule"
_OUT_OF_FOLD = "no network trained on the row it predicts, but the configurations were chosen on part of these rows"


@dataclass(frozen=True)
class Score:
    """A score's title, and why it can or cannot be trusted on holdout rows and on out-of-fold rows."""

    title: str
    trust: str       # SELECTION (these rows chose what is scored: optimistic) or HONEST_FOR_THE_RULE
    on_holdout: str
    on_out_of_fold: str


SCORES = {
    "best_single_argmax": Score(
        "best single member, argmax", SELECTION, "the search ranked its trials on these rows",
        f"the best of the retrained configurations on these rows; {_OUT_OF_FOLD}"),
    "best_single_median_rule": Score(
        "best single member, 0.5 rule", SELECTION, "the search ranked its trials on these rows",
        f"the best of the retrained configurations on these rows; {_OUT_OF_FOLD}"),
    "best_single_learned_rule": Score(
        "best single member, its decision rule (fitted on these rows)", SELECTION,
        "the search ranked its trials on these rows; thresholds fitted on them",
        f"the best of the retrained configurations, thresholds fitted on these rows; {_OUT_OF_FOLD}"),
    "ensemble_argmax": Score(
        "ensemble, argmax", SELECTION, "members and weights chosen on these rows",
        f"weights fitted on these rows; {_OUT_OF_FOLD}"),
    "ensemble_median_rule": Score(
        "ensemble, 0.5 rule", SELECTION, "members and weights chosen on these rows",
        f"weights fitted on these rows; {_OUT_OF_FOLD}"),
    "ensemble_learned_rule": Score(
        "ensemble, its decision rule (fitted on these rows)", SELECTION,
        "members, weights and thresholds fitted on these rows",
        f"weights and thresholds fitted on these rows; {_OUT_OF_FOLD}"),
    "ensemble_learned_rule_cross_fitted": Score(
        "ensemble, learned rule cross-fitted (honest for the rule)", HONEST_FOR_THE_RULE,
        "thresholds scored on folds they were not fitted on; members still chosen on these rows",
        f"thresholds scored on folds they were not fitted on; weights fitted on these rows; {_OUT_OF_FOLD}"),
    "unlimited_ensemble_learned_rule": Score(
        "without the prediction-cost limit: ensemble, its decision rule", SELECTION,
        "what the ensemble would score without the prediction-cost limit; members, weights and thresholds "
        "fitted on these rows", f"without the prediction-cost limit; {_OUT_OF_FOLD}"),
}


REQUIRED_SCORES = [key for key in SCORES if key != "unlimited_ensemble_learned_rule"]  # that one with a limit only


@dataclass
class ChosenMember:
    """A trial in the ensemble (with --folds: a configuration, one network per fold)."""

    trial: str
    family: str
    checkpoints: list[str]
    weight: float
    val_abs_sum: float
    val_log_loss: float
    cost: float | None = None             # multiply-accumulates per beat of its networks together
    predict_seconds: float | None = None  # the same in seconds per 10,000 beats, by the experiment's calibration
    refit: bool | None = None             # retrained on every row (None: no refit was tried)
    search_checkpoints: list[str] | None = None  # the search's, where refit ones replaced them


@dataclass
class Refit:
    """What the refit on every labelled row did."""

    rows: int
    planned_seconds: float
    networks: int                  # refit in time; the others ship as the search trained them
    experiment: str | None = None  # the Ray experiment that retrained them
    seconds: float | None = None   # the time it was given, which decided its further seeds (None: no bound)


@dataclass
class CrossFitting:
    """The retraining on K folds of every row, whose out-of-fold predictions chose the final ensemble."""

    folds: int
    epochs: int | None
    experiment: str


@dataclass
class Holdout:
    """The ensemble selected on the holdout validation rows, before cross-fitting replaced it."""

    members: list[ChosenMember]
    scores: dict[str, float]
    validation_rows: int


@dataclass
class EnsembleSummary:
    """The ensemble: its members (weights sum to 1), its decision rule, and its scores on the rows it was
    selected on (`SCORES` says what each can be trusted for)."""

    members: list[ChosenMember]
    decision_rule: DecisionRule
    scores: dict[str, float]
    validation_rows: int
    ensemble_log_loss: float
    trajectory: list[dict]           # each selection step: the member added, abs-sum, log-loss, kept
    kept_steps: int | None           # steps the bootstrap kept (None with bagging, or when it fell back)
    fell_back_to_best_single: bool   # the ensemble scored worse than its best member alone
    library: list[str]               # the trials selection chose from
    cost: float | None = None        # the members' multiply-accumulates per beat together
    cost_limit: float | None = None
    cost_unit: str | None = None
    seconds_per_mac: float | None = None
    predict_seconds: float | None = None
    predict_budget: float | None = None
    refit: Refit | None = None
    cross_fitted: CrossFitting | None = None
    holdout: Holdout | None = None

    def to_dict(self) -> dict:
        """JSON-ready, the format of ensemble.json."""
        return {**asdict(self), "decision_rule": self.decision_rule.to_dict()}

    @classmethod
    def from_dict(cls, saved: dict) -> EnsembleSummary:
        """The summary saved by `to_dict`; KeyError, TypeError or ValueError name what is wrong."""
        if not isinstance(saved, dict):
            raise TypeError(f"expected an object, got {type(saved).__name__}")
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in saved.items() if key in known}
        values["members"] = _members(saved["members"])
        values["decision_rule"] = DecisionRule.from_dict(saved["decision_rule"])
        if values.get("refit") is not None:
            values["refit"] = Refit(**values["refit"])
        if values.get("cross_fitted") is not None:
            values["cross_fitted"] = CrossFitting(**values["cross_fitted"])
        if values.get("holdout") is not None:
            holdout = values["holdout"]
            values["holdout"] = Holdout(_members(holdout["members"]), dict(holdout["scores"]),
                                        int(holdout["validation_rows"]))
        summary = cls(**values)
        unknown, missing = sorted(set(summary.scores) - set(SCORES)), sorted(set(REQUIRED_SCORES) - set(summary.scores))
        if unknown or missing:
            raise ValueError(f"scores: unknown {unknown}, missing {missing}")
        if summary.decision_rule.fallback not in FALLBACKS:
            raise ValueError(f"unknown fallback {summary.decision_rule.fallback!r}")
        return summary


def _members(saved: list) -> list[ChosenMember]:
    if not isinstance(saved, list) or not saved:
        raise ValueError("members must be a non-empty list")
    return [ChosenMember(**member) for member in saved]
