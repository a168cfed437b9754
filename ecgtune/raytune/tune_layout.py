"""Where Ray Tune keeps an experiment's trials, read from the files alone (no Ray import, no running
cluster), so that an interrupted experiment can be ensembled and reported:

    EXPERIMENT/TRIAL/result.json            every result the trial reported, one JSON object a line
    EXPERIMENT/TRIAL/checkpoint_NNNNNN/     its checkpoints, numbered in the order they were taken
                                            (their files: `ecgtune.checkpoint`)
    EXPERIMENT/experiment_state-*.json ...  Ray's own state of the experiment (`RAY_STATE_FILES`)
"""

from __future__ import annotations

import json
import pickletools
from pathlib import Path

from ecgtune.checkpoint import CONFIG_FILE

RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
RAY_STATE_FILES = ("experiment_state-*.json", "search_gen_state-*.json", "searcher-state-*.pkl",
                   "basic-variant-state-*.json", "tuner.pkl", "trainable.pkl")
METRIC = "val_abs_sum"  # what the search minimises: a trial's validation abs-sum
MODE = "min"
FIRST_EPOCH_FRACTION = 0.25  # a search trial first reports after a quarter epoch: ASHA's cheap first rung


def latest_checkpoints(experiment_dir: Path) -> dict[str, Path]:
    """The newest checkpoint folder of every trial in a (finished or interrupted) experiment folder, by
    trial folder name. A folder without its description yet is no checkpoint."""
    newest = {}
    for description in sorted(experiment_dir.glob(f"*/checkpoint_*/{CONFIG_FILE}")):
        newest[description.parent.parent.name] = description.parent
    return newest


def trial_results(experiment_dir: Path) -> dict[str, list[dict]]:
    """Every trial's reported results in order, by trial folder name; a line an interruption cut short
    is left out."""
    results = {}
    for path in sorted(experiment_dir.glob(f"*/{RESULT_FILE}")):
        records = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        results[path.parent.name] = records
    return results


def ray_state_files(experiment_dir: Path) -> list[Path]:
    """Ray's own state files of the experiment (not the trials' folders)."""
    return sorted(path for pattern in RAY_STATE_FILES for path in experiment_dir.glob(pattern))


def folder_rows(experiment_dir: Path) -> list[dict]:
    """One leaderboard row per trial folder that reported a validation score, from its files alone: the
    figures of its best epoch (lowest abs-sum, then log-loss), its family, where it stands and its
    newest checkpoint. So the leaderboard does not depend on Ray's experiment state."""
    newest, rows = latest_checkpoints(experiment_dir), []
    for trial, records in trial_results(experiment_dir).items():
        scored = [record for record in records if METRIC in record]
        if not scored:
            continue
        best = min(scored, key=lambda record: (record[METRIC], record.get("val_log_loss", 0.0)))
        rows.append(leaderboard_row(
            best, epochs_run=max(int(record.get("training_iteration", 0)) for record in records),
            seconds=max(float(record.get("time_total_s", 0.0)) for record in records),
            status=_status(experiment_dir / trial, scored), checkpoint=str(newest[trial]) if trial in newest else ""))
    return rows


def leaderboard_row(best, *, epochs_run: int, seconds: float, status: str, checkpoint: str) -> dict:
    """A trial's leaderboard row: the figures of its best epoch (`best`: a result record, or a row of
    Ray's results table) and where the trial stands."""
    return {"trial_id": best["trial_id"], "family": best["family"], "val_abs_sum": float(best[METRIC]),
            "val_abs_sum_proba": float(best["val_abs_sum_proba"]), "val_accuracy": float(best["val_accuracy"]),
            "val_log_loss": float(best["val_log_loss"]), "best_epoch": int(best["epoch"]), "epochs_run": epochs_run,
            "seconds": seconds, "status": status, "checkpoint": checkpoint}


def _status(trial_dir: Path, scored: list[dict]) -> str:
    """"error" when the trial's last failure came after its last result (Ray keeps error.txt after a
    retry succeeded), "diverged" when an epoch's loss turned NaN, else "ok"."""
    error, results = trial_dir / ERROR_FILE, trial_dir / RESULT_FILE
    if error.exists() and error.stat().st_mtime > results.stat().st_mtime:
        return "error"
    return "diverged" if any(record.get("diverged") for record in scored) else "ok"


def trial_points(experiment_dir: Path) -> list[dict]:
    """The flat parameters (`train/lr`, `dilated_cnn/widths.0`...) each trial folder was given, from
    Ray's params.json (Ray nests the searcher's `group/name` parameters one level)."""
    points = []
    for path in sorted(experiment_dir.glob("*/params.json")):
        try:
            points.append(flat_point(json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return points


def flat_point(config: dict) -> dict:
    """A trial's config as the searcher's flat point: Ray nests `group/name` parameters one level."""
    point = {}
    for key, value in config.items():
        point.update({f"{key}/{inner}": item for inner, item in value.items()} if isinstance(value, dict)
                     else {key: value})
    return point


def damaged_state_file(experiment_dir: Path) -> str | None:
    """The first of Ray's state files that is cut short (JSON that does not parse, a pickle whose
    opcodes end before its STOP), read without running anything; None when all are whole. Ray names
    some pickles `.json`, so the content decides (pickles from protocol 2 on start with 0x80)."""
    for path in ray_state_files(experiment_dir):
        try:
            content = path.read_bytes()
            if content[:1] == b"\x80" or path.suffix == ".pkl":
                for _ in pickletools.genops(content):  # raises ValueError when the stream ends early
                    pass
            else:
                json.loads(content)
        except (OSError, ValueError) as error:
            return f"{path.name}: {error}"
    return None
