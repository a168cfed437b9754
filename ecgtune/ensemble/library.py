"""The library of models an ensemble is chosen from: the trials' best-epoch checkpoints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgtune.errors import EcgtuneError

CONFIG_FILE, PROBS_FILE = "config.json", "val_probs.npy"


@dataclass(frozen=True)
class Member:
    """One trial's best epoch: where its checkpoint is, what it is, how it scored, what it predicted."""

    trial: str
    family: str
    checkpoint: Path
    val_abs_sum: float
    val_log_loss: float
    val_probs: np.ndarray


def latest_checkpoints(experiment_dir: Path) -> list[Path]:
    """The newest checkpoint folder of every trial in a (finished or interrupted) experiment folder."""
    newest = {}
    for config in sorted(experiment_dir.glob(f"*/checkpoint_*/{CONFIG_FILE}")):
        newest[config.parent.parent] = config.parent
    return list(newest.values())


def load_library(experiment_dir: Path, n_rows: int, top_k: int = 30) -> list[Member]:
    """The `top_k` best checkpoints by validation abs-sum (ties by log-loss), plus the best of every
    family not among them; each with validation probabilities for `n_rows` rows."""
    members = []
    for folder in latest_checkpoints(experiment_dir):
        try:
            described = json.loads((folder / CONFIG_FILE).read_text())
            probs = np.load(folder / PROBS_FILE, allow_pickle=False)
            best = described["best_metrics"]
            member = Member(folder.parent.name, described["family"], folder, float(best["abs_sum"]),
                            float(best["log_loss"]), probs)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise EcgtuneError(f"{folder}: unreadable checkpoint ({error})") from None
        if probs.ndim != 2 or probs.shape[0] != n_rows:
            raise EcgtuneError(f"{folder / PROBS_FILE}: probabilities of shape {probs.shape} do not match "
                               f"the experiment's {n_rows} validation rows")
        members.append(member)
    if not members:
        raise EcgtuneError(f"{experiment_dir}: no trial checkpoints yet")
    members.sort(key=lambda m: (m.val_abs_sum, m.val_log_loss, m.trial))
    chosen = members[:top_k]
    families = {m.family for m in chosen}
    for member in members[top_k:]:
        if member.family not in families:
            chosen.append(member)
            families.add(member.family)
    return chosen
