"""Where Ray Tune keeps an experiment's trials, read from the files alone (no Ray import, no running
cluster), so that an interrupted experiment can be ensembled and reported:

    EXPERIMENT/TRIAL/result.json            every result the trial reported, one JSON object a line
    EXPERIMENT/TRIAL/checkpoint_NNNNNN/     its checkpoints, numbered in the order they were taken
                                            (their files: `ecgtune.checkpoint`)
"""

from __future__ import annotations

import json
from pathlib import Path

from ecgtune.checkpoint import CONFIG_FILE

RESULT_FILE = "result.json"


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
