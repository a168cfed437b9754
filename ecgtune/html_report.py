"""The experiment's report: RUNS_DIR/NAME/report.html, one self-contained page with its images embedded.

It shows the leaderboard, the search's progress, parameter importances (Optuna's fANOVA on the
search's study, `ecgtune.analysis`), the ensemble's members, weights and selection trajectory, its
confusion matrices, the decision rule, and every score labelled as a selection figure (these rows
chose it) or an honest one. It is written from the files an experiment leaves, so it also works for
an interrupted one.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np

from ecgtune.analysis import FEW_TRIALS_FOR_IMPORTANCE, MIN_TRIALS_FOR_IMPORTANCE, Importances, study_importances
from ecgtune.atomic import write_text_atomically
from ecgtune.errors import EcgtuneError
from ecgtune.ensemble.summary import SCORES, EnsembleSummary
from ecgtune.experiment import (ENSEMBLE_FILE, ENSEMBLE_PROBS_FILE, LEADERBOARD_FILE, OPTUNA_JOURNAL, Plan, load_plan,
                                read_summary, saved_fingerprint)
from ecgtune.report import LEADERBOARD_COLUMNS, format_prediction_cost, leaderboard_tables, member_columns, member_rows
from ecgtune.storage import is_remote

REPORT_FILE = "report.html"
FAMILY_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1", "#9c755f", "#edc948")

def write_report(run_dir: Path) -> Path:
    """Writes RUNS_DIR/NAME/report.html from the experiment's files and returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    plan = load_plan(run_dir)
    histories = read_histories(Path(plan.storage) / run_dir.name) if not is_remote(plan.storage) else {}
    summary = read_summary(run_dir)
    importances = study_importances(run_dir / OPTUNA_JOURNAL, run_dir.name, plan.families)
    sections = [_overview(run_dir, plan, histories, summary), _flags(plan, histories, summary, importances),
                _timings(run_dir), _leaderboard(run_dir), _progress(histories), _importances(importances)]
    if summary is not None:
        sections += [_scores(summary), _members(summary), _decisions(run_dir, summary)]
    page = PAGE.format(title=html.escape(f"ecgtune: {run_dir.name}"), body="\n".join(sections),
                       created=time.strftime("%Y-%m-%d %H:%M:%S"))
    write_text_atomically(run_dir / REPORT_FILE, page)
    return run_dir / REPORT_FILE


def _read(path: Path, reader):
    """`reader(path)`, with any failure to read or parse it reported as one line naming the file."""
    try:
        return reader(path)
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
        raise EcgtuneError(f"{path}: unreadable ({error})") from None


def read_histories(experiment_dir: Path) -> dict[str, list[dict]]:
    """Every trial's per-epoch results (those that carry a validation score), by trial folder."""
    # Imported here, not at the top: the search layer's package imports torch.
    from ecgtune.raytune.tune_layout import trial_results

    histories = {}
    for trial, results in trial_results(experiment_dir).items():
        scored = [result for result in results if "val_abs_sum" in result]
        if scored:
            histories[trial] = scored
    return histories


def _overview(run_dir: Path, plan: Plan, histories: dict, summary: EnsembleSummary | None) -> str:
    fingerprint = saved_fingerprint(run_dir)
    facts = [
        ("data", plan.data or f"embedded synthetic beats ({plan.rows} rows)"),
        ("rows", f"{fingerprint.get('rows', '?')} x {fingerprint.get('signal_length', '?')} samples, class counts "
                 f"{fingerprint.get('class_counts', '?')}"),
        ("families", ", ".join(plan.families)),
        ("search", f"{plan.searcher} + {plan.scheduler}, "
                   + ("as many trials as the time allows" if plan.num_samples is None else
                      f"{plan.num_samples} trials at most")
                   + (f", {plan.time_budget_s / 60:g} min budget" if plan.time_budget_s else "")),
        ("trials that reported", str(len(histories))),
        ("validation", f"stratified {plan.val_fraction:.0%} holdout, seed {plan.seed}"),
    ]
    if summary is not None:
        score = summary.scores["ensemble_learned_rule_cross_fitted"]
        facts.append(("ensemble", f"{len(summary.members)} members; {score:.1f} abs-sum on "
                                  f"{summary.validation_rows} rows with the decision rule cross-fitted"))
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
    return f"<h1>Experiment {html.escape(run_dir.name)}</h1><table class='facts'>{rows}</table>"


def _flags(plan: Plan, histories: dict, summary: EnsembleSummary | None, importances: Importances) -> str:
    """What a reader must not miss, at the top: an ensemble worse than the best trial alone, families
    that never reported, and importances from too few trials."""
    flags = []
    if summary is not None:
        ensemble, best = summary.scores["ensemble_learned_rule"], summary.scores["best_single_learned_rule"]
        if ensemble > best:
            why = " (the prediction-cost limit left the best trial out)" if summary.cost_limit is not None else ""
            flags.append(f"The exported ensemble scores {ensemble:.1f} on the rows it was chosen on, worse than the "
                         f"best trial alone with its own rule ({best:.1f}){why}.")
    ran = {record["family"] for records in histories.values() for record in records}
    silent = [family for family in plan.families if family not in ran]
    if histories and silent and not plan.long_trials:  # long trials run only a few families by design
        flags.append(f"Never reported a result: {', '.join(silent)} (no trial of "
                     f"{'this family' if len(silent) == 1 else 'these families'} finished an epoch, or none "
                     "was started).")
    few = importances.few_trials()
    if few:
        flags.append(f"Parameter importances of {', '.join(few)} come from fewer than {FEW_TRIALS_FOR_IMPORTANCE} "
                     "trials: a hint, not a finding.")
    if plan.long_trials:
        epochs = ", ".join(str(point["train/epochs"]) for point in plan.long_trial_points)
        flags.append(f"The budget was too short to search: {plan.num_samples} of the searcher's first configurations "
                     f"(the portfolio's first) were trained long instead, planned for {epochs} epochs and re-planned "
                     "at their own pace to fill their share of the search (the leaderboard's epochs run).")
    if not flags:
        return ""
    return "<ul class='flags'>" + "".join(f"<li>{html.escape(flag)}</li>" for flag in flags) + "</ul>"


def _timings(run_dir: Path) -> str:
    """How the run spent its time budget, stage by stage (search writes timings.json)."""
    from ecgtune.pipeline import TIMINGS_FILE

    path = run_dir / TIMINGS_FILE
    if not path.exists():
        return ""
    timings = _read(path, lambda p: json.loads(p.read_text()))
    try:
        stages = {str(name): float(seconds) for name, seconds in timings["stages"].items()}
        budget = timings["budget_s"]
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise EcgtuneError(f"{path}: unreadable ({error!r})") from None
    rows = [{"stage": name, "seconds": seconds, "share": seconds / budget if budget else float("nan")}
            for name, seconds in stages.items()]
    rows.append({"stage": "all stages", "seconds": sum(stages.values()), "share": sum(stages.values()) / budget
                 if budget else float("nan")})
    said = f"a budget of {budget / 60:g} minutes" if budget else "no time budget"
    return (f"<h2>Time</h2><p>How the run spent {said} (the search's share is what was left after the "
            "refit's share and the finishing stages' reserve).</p>"
            + _table(rows, (("stage", "stage", "{}"), ("seconds", "seconds", "{:.1f}"),
                            ("share", "share of the budget", "{:.0%}"))))


def _leaderboard(run_dir: Path) -> str:
    path = run_dir / LEADERBOARD_FILE
    if not path.exists():
        return "<h2>Leaderboard</h2><p>No leaderboard yet: the search has not finished.</p>"
    rows = _read(path, _csv_rows)
    parts = ["<h2>Leaderboard</h2><p>Validation abs-sum of each trial's best epoch (argmax decisions; lower is "
             "better). These rows also chose the best trial, so the top figure is a selection figure.</p>"]
    for title, table in leaderboard_tables(rows):
        parts.append(f"<h3>{html.escape(title)}</h3>{_table(table, LEADERBOARD_COLUMNS)}")
    return "".join(parts)


def _csv_rows(path: Path) -> list[dict]:
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        for key, _, fmt in LEADERBOARD_COLUMNS:
            if fmt != "{}":
                float(row[key])
    return rows


def _table(rows: list[dict], columns) -> str:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title, _ in columns)
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key, "")
            text = fmt.format(float(value)) if fmt != "{}" and value != "" else str(value)
            cells.append(f"<td class='{'num' if fmt != '{}' else ''}'>{html.escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _progress(histories: dict[str, list[dict]]) -> str:
    import matplotlib.pyplot as plt

    if not histories:
        return "<h2>Search progress</h2><p>No trial has reported yet.</p>"
    records = sorted((r["timestamp"], r["family"], r["val_abs_sum"]) for rs in histories.values() for r in rs)
    start = records[0][0]
    figure, axes = plt.subplots(figsize=(8, 4))
    families = sorted({family for _, family, _ in records})
    # the best overall is drawn first, wide and pale, so that the family it follows shows on top of it
    times, scores = _running_best([(t - start, s) for t, _, s in records])
    axes.step(np.array(times) / 60, scores, where="post", color="#c8c8c8", linewidth=6, label="best overall",
              zorder=1)
    for colour, family in zip(_colours(len(families)), families):
        times, scores = _running_best([(t - start, s) for t, f, s in records if f == family])
        axes.step(np.array(times) / 60, scores, where="post", color=colour, label=family, linewidth=1.5, zorder=2)
    spread = max(score for _, _, score in records) / max(min(score for _, _, score in records), 1.0)
    axes.set(xlabel="minutes since the first result", ylabel="best validation abs-sum so far",
             yscale="log" if spread > 5 else "linear", title="Search progress")
    axes.legend(fontsize=8)
    return ("<h2>Search progress</h2><p>Best validation abs-sum reached so far, per family and overall "
            "(every epoch of every trial counts).</p>" + _image(figure))


def _running_best(points: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    times, scores, best = [], [], np.inf
    for moment, score in points:
        best = min(best, score)
        times.append(moment)
        scores.append(best)
    return times, scores


def _importances(importances: Importances) -> str:
    import matplotlib.pyplot as plt

    title = "<h2>Parameter importances</h2>"
    if not importances.by_group:
        return (f"{title}<p>Too few finished trials in the search's Optuna journal for importances (at least "
                f"{MIN_TRIALS_FOR_IMPORTANCE} are needed in a group).</p>")
    groups = importances.by_group
    figure, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.2), squeeze=False)
    for axis, (group, found) in zip(axes[0], groups.items()):
        names = list(found)[:10][::-1]
        axis.barh(names, [found[name] for name in names], color="#4e79a7")
        axis.set(title=f"{group} ({importances.trials[group]} trials)", xlabel="importance (fANOVA)")
        axis.tick_params(axis="y", labelsize=7)
    few = importances.few_trials()
    caution = (f" <b>Rough:</b> {', '.join(few)} had fewer than {FEW_TRIALS_FOR_IMPORTANCE} trials, so their "
               "importances are a hint, not a finding." if few else "")
    return (f"{title}<p>Optuna's fANOVA on the search's study (optuna.journal, with any earlier trials a "
            "--warm-start passed on; optuna-dashboard shows it too), from each finished trial's last validation "
            "abs-sum. Across families only the shared parameters "
            f"compare; each family with at least {MIN_TRIALS_FOR_IMPORTANCE} trials gets its own panel.{caution}</p>"
            + _image(figure))


def _scores(summary: EnsembleSummary) -> str:
    cross_fitted = summary.cross_fitted
    rows = [{"stage": SCORES[key].title, "abs_sum": value, "kind": SCORES[key].trust,
             "why": SCORES[key].on_out_of_fold if cross_fitted else SCORES[key].on_holdout}
            for key, value in summary.scores.items()]
    rows_kind = "out-of-fold rows (every labelled row)" if cross_fitted else "holdout validation rows"
    parts = [f"<h2>Scores</h2><p>Abs-sum on {summary.validation_rows} {rows_kind}; lower is better. "
             "<b>selection</b>: these rows took part in choosing what is scored, so the figure is optimistic; "
             "<b>honest</b>: scored on rows that did not fit what is named.</p>",
             _table(rows, (("stage", "stage", "{}"), ("abs_sum", "abs-sum", "{:.1f}"), ("kind", "kind", "{}"),
                           ("why", "why", "{}")))]
    if cross_fitted:
        holdout = [{"stage": SCORES[key].title, "abs_sum": value} for key, value in summary.holdout.scores.items()]
        parts.append(f"<h3>Before cross-fitting: the holdout ensemble ({summary.holdout.validation_rows} "
                     f"rows)</h3>{_table(holdout, (('stage', 'stage', '{}'), ('abs_sum', 'abs-sum', '{:.1f}')))}")
    return "".join(parts)


def _members(summary: EnsembleSummary) -> str:
    import matplotlib.pyplot as plt

    members = summary.members
    figure, (weights_axis, path_axis) = plt.subplots(1, 2, figsize=(11, max(3.0, 0.35 * len(members) + 1.5)))
    labels = [f"{m.family} {m.trial.rsplit('_', 1)[-1]}" for m in members][::-1]
    families = sorted({m.family for m in members})
    colour_of = dict(zip(families, _colours(len(families))))
    weights_axis.barh(labels, [m.weight for m in members][::-1], color=[colour_of[m.family] for m in members][::-1])
    weights_axis.set(title="Members and weights", xlabel="weight")
    weights_axis.tick_params(axis="y", labelsize=8)
    steps, kept = summary.trajectory, summary.kept_steps
    path_axis.plot(range(1, len(steps) + 1), [step["abs_sum"] for step in steps], marker=".", color="#4e79a7")
    if kept is None:
        path_axis.set(title="Greedy selection, every bagging round in turn")
    else:
        path_axis.axvline(kept, color="#e15759", linestyle="--", label=f"kept: first {kept} steps (later gains "
                                                                       "within noise)")
        path_axis.legend(fontsize=8)
        path_axis.set(title="Greedy selection trajectory")
    path_axis.set(xlabel="selection step", ylabel="abs-sum, argmax")
    table = _table(member_rows(summary), member_columns(summary))
    library = (f"{len(summary.library)} configurations retrained on {summary.cross_fitted.folds} folds"
               if summary.cross_fitted else f"{len(summary.library)} checkpoints")
    return ("<h2>Ensemble</h2><p>Greedy forward selection with replacement (Caruana et al., 2004) from a library "
            f"of {library}, from the best member; a step was kept only when a bootstrap over the rows found it "
            "better than the last kept one in 90 % of resamples.</p>"
            + _image(figure) + table + f"<p>{html.escape(format_prediction_cost(summary))}</p>")


def _decisions(run_dir: Path, summary: EnsembleSummary) -> str:
    import matplotlib.pyplot as plt

    from ecgtune.analysis import confusion_matrix
    from ecgtune.metrics import argmax_decisions

    rule = summary.decision_rule
    thresholds = "".join(f"<tr><th>class {k}</th><td class='num'>{t:.2f}</td></tr>"
                         for k, t in enumerate(rule.thresholds))
    scores = summary.scores
    shipped = ("<b>the argmax</b>: the learned thresholds scored worse than it cross-fitted, so they ship no thresholds"
               if rule.is_argmax else f"the learned thresholds; rows where no class clears its threshold get "
               f"<b>{html.escape(rule.fallback)}</b>")
    text = ("<h2>Decision rule</h2><p>Per class the L1-optimal output is 1 where the probability clears the class's "
            f"threshold. Shipped: {shipped}. Ensemble "
            f"abs-sum: argmax {scores['ensemble_argmax']:.1f}, 0.5 rule {scores['ensemble_median_rule']:.1f}, "
            f"its rule {scores['ensemble_learned_rule']:.1f} "
            f"(the learned thresholds cross-fitted {scores['ensemble_learned_rule_cross_fitted']:.1f}).</p>"
            + ("" if rule.is_argmax else f"<table class='facts'>{thresholds}</table>"))
    path = run_dir / ENSEMBLE_PROBS_FILE
    if not path.exists():
        return text
    probs, labels = _read(path, _saved_probs)
    n_classes = probs.shape[1]
    if n_classes != len(rule.thresholds) or len(probs) != len(labels):
        raise EcgtuneError(f"{path}: probabilities of shape {probs.shape} do not match {ENSEMBLE_FILE}")
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for axis, (title, decisions) in zip(axes, (("argmax", argmax_decisions(probs)),
                                               ("learned rule", rule.decide(probs)))):
        matrix = confusion_matrix(labels, decisions)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (row, column), count in np.ndenumerate(matrix):
            axis.text(column, row, str(count), ha="center", va="center", fontsize=8,
                      color="white" if shares[row, column] > 0.6 else "black")
        axis.set_xticks(range(n_classes + 1), [*map(str, range(n_classes)), "none"])
        axis.set_yticks(range(n_classes))
        axis.set(title=f"Confusion matrix, {title}", xlabel="decided class ('none': no class output)",
                 ylabel="true class")
    return (text + "<p>On the same rows the weights and thresholds were fitted on, so in-sample.</p>"
            + _image(figure))


def _saved_probs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path, allow_pickle=False) as saved:
        return saved["probs"], saved["labels"]


def _colours(count: int) -> list[str]:
    return [FAMILY_COLOURS[i % len(FAMILY_COLOURS)] for i in range(count)]


def _image(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"<img alt='figure' src='data:image/png;base64,{encoded}'>"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1150px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left; }}
thead th {{ background: #f3f3f3; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.facts th {{ background: none; font-weight: 600; }}
img {{ max-width: 100%; }}
h2 {{ border-bottom: 2px solid #4e79a7; padding-bottom: 0.2em; margin-top: 2em; }}
footer {{ color: #888; font-size: 0.8em; margin-top: 3em; }}
ul.flags {{ background: #fff4e5; border-left: 4px solid #e15759; padding: 0.6em 1em 0.6em 2em; }}
</style></head>
<body>
{body}
<footer>Written by ecgtune on {created}.</footer>
</body></html>
"""
