"""Leaderboards: a readable table for the terminal and a CSV next to the run's other outputs."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from ecgtune.atomic import write_text_atomically
from ecgtune.ensemble.summary import EnsembleSummary

LEADERBOARD_COLUMNS = (
    ("rank", "rank", "{}"),
    ("family", "family", "{}"),
    ("trial_id", "trial", "{}"),
    ("val_abs_sum", "val abs-sum", "{:.1f}"),
    ("val_abs_sum_proba", "abs-sum (proba)", "{:.1f}"),
    ("val_accuracy", "accuracy", "{:.4f}"),
    ("val_log_loss", "log-loss", "{:.4f}"),
    ("best_epoch", "best epoch", "{}"),
    ("epochs_run", "epochs run", "{}"),
    ("seconds", "seconds", "{:.1f}"),
    ("status", "status", "{}"),
)
TOP_TRIALS = 10


def rank_rows(rows: Sequence[dict]) -> list[dict]:
    """Rows sorted by validation abs-sum (then log-loss), numbered from 1."""
    ordered = sorted(rows, key=lambda row: (row["val_abs_sum"], row["val_log_loss"]))
    return [{**row, "rank": rank} for rank, row in enumerate(ordered, start=1)]


def leaderboard_tables(ranked: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """The tables printed after a search: the best trial of each family, and the best trials overall."""
    best_per_family = {}
    for row in ranked:
        best_per_family.setdefault(row["family"], row)
    return [("Best per family", list(best_per_family.values())),
            (f"Best trials overall (top {min(TOP_TRIALS, len(ranked))} of {len(ranked)})", list(ranked[:TOP_TRIALS]))]


def format_table(rows: Sequence[dict], columns=LEADERBOARD_COLUMNS) -> str:
    """Aligned plain-text table: text left-aligned, numbers right-aligned."""
    header = [title for _, title, _ in columns]
    cells = [[fmt.format(row[key]) for key, _, fmt in columns] for row in rows]
    widths = [max(len(text) for text in column) for column in zip(header, *cells)]
    numeric = [fmt != "{}" or key in ("rank", "best_epoch", "epochs_run") for key, _, fmt in columns]

    def line(values):
        return "  ".join(v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric)).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(header), rule, *(line(values) for values in cells)])


def write_csv(rows: Sequence[dict], path: Path) -> None:
    """Writes leaderboard rows (every key of the first row) to a CSV that appears whole or not at all."""
    buffer = io.StringIO()
    leading = [key for key, _, _ in LEADERBOARD_COLUMNS]
    columns = leading + [key for key in rows[0] if key not in leading]
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomically(path, buffer.getvalue())


def format_ensemble(summary: EnsembleSummary) -> str:
    """The ensemble's members and weights, its decision rule, and the validation abs-sum of each stage."""
    from ecgtune.ensemble import SCORES

    cross_fitted = summary.cross_fitted
    rows_scored = "out-of-fold" if cross_fitted else "validation"
    members = format_table(member_rows(summary), columns=member_columns(summary))
    scores = format_table(
        [{"stage": SCORES[key].title, "abs_sum": value} for key, value in summary.scores.items()],
        columns=(("stage", "stage", "{}"),
                 ("abs_sum", f"{rows_scored} abs-sum ({summary.validation_rows} rows)", "{:.1f}")),
    )
    rule = summary.decision_rule
    thresholds = ", ".join(f"{t:.2f}" for t in rule.thresholds)
    if cross_fitted:
        title = (f"Cross-fitted ensemble of {len(summary.members)} configurations x {cross_fitted.folds} "
                 f"folds (each row predicted by models that never trained on it)")
        caveat = ("(The weights and thresholds were fitted on these out-of-fold rows: in-sample for them,\n"
                  f"honest for the networks. Holdout ensemble before cross-fitting: "
                  f"{summary.holdout.scores['ensemble_learned_rule']:.1f} on "
                  f"{summary.holdout.validation_rows} rows.)")
    else:
        title = f"Ensemble of {len(summary.members)} members (from a library of {len(summary.library)})"
        if summary.refit is None:
            title += ", not refit: its networks ship as the search trained them"
        caveat = "(The ensemble was selected on these rows, so its figures are optimistic.)"
    if rule.is_argmax:
        decision = (f"argmax (learned thresholds scored "
                    f"{summary.scores['ensemble_learned_rule_cross_fitted']:.1f} cross-fitted, worse than the argmax)")
    else:
        decision = f"thresholds {thresholds}; rows below every threshold: {rule.fallback}"
    return f"{title}\n{members}\n{format_prediction_cost(summary)}\n\nDecision rule: {decision}\n\n{scores}\n{caveat}"


def member_columns(summary: EnsembleSummary) -> tuple:
    """The columns of the ensemble's members table (terminal and report)."""
    rows_scored = "out-of-fold" if summary.cross_fitted else "validation"
    columns = (("family", "family", "{}"), ("trial", "trial", "{}"), ("models", "models", "{:.0f}"),
               ("weight", "weight", "{:.3f}"), ("val_abs_sum", f"member {rows_scored} abs-sum", "{:.1f}"))
    if summary.refit is not None:
        columns += (("refit", "refit on every row", "{}"),)
    if summary.predict_seconds is not None:
        columns += (("mmacs", "MMAC per beat", "{:.2f}"), ("predict_seconds", "predict s / 10k beats", "{:.2f}"))
    return columns


def member_rows(summary: EnsembleSummary) -> list[dict]:
    """One row per member of the ensemble, for `member_columns`."""
    return [{**asdict(member), "models": len(member.checkpoints), "mmacs": (member.cost or 0) / 1e6,
             "refit": "yes" if member.refit else "no"} for member in summary.members]


def format_prediction_cost(summary: EnsembleSummary) -> str:
    """How long the ensemble's networks take to predict, the budget they were chosen within, and what
    that budget cost in validation abs-sum."""
    if summary.predict_seconds is None:
        return "(prediction cost not computed: built by an earlier version)"
    budget = summary.predict_budget
    line = (f"Prediction time of all networks: {summary.predict_seconds:.2f} s "
            f"({f'budget {budget:g} s' if budget else 'no budget'}); in {summary.cost_unit}")
    unlimited = summary.scores.get("unlimited_ensemble_learned_rule")
    if unlimited is not None:
        price = summary.scores["ensemble_learned_rule"] - unlimited
        line += (f"\nThe limit costs {price:.1f} in validation abs-sum ({unlimited:.1f} without it)" if price > 0
                 else "\nThe limit costs nothing in validation abs-sum")
    return line
