"""The library of models an ensemble is chosen from: the trials' best-epoch checkpoints, or the
cross-fitted members (one configuration trained on K folds, its out-of-fold probabilities joined)."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgtune.errors import EcgtuneError
from ecgtune.metrics import abs_sum, argmax_decisions, log_loss, prior_baseline

CONFIG_FILE, PROBS_FILE, WEIGHTS_FILE = "config.json", "val_probs.npy", "model.safetensors"


@dataclass(frozen=True)
class Member:
    """One trial's best epoch (or one configuration's K fold models): where its checkpoints are, what it
    is, how it scored, what it predicted for the validation (or out-of-fold) rows."""

    trial: str
    family: str
    checkpoints: tuple[Path, ...]
    val_abs_sum: float
    val_log_loss: float
    val_probs: np.ndarray
    description: dict = field(default_factory=dict, compare=False)  # the checkpoint's config.json


def fold_trial_name(member: str, fold: int) -> str:
    """The folder of the cross-fitting trial that trains configuration `member` without fold `fold`."""
    return f"{member}_fold{fold}"


def latest_checkpoints(experiment_dir: Path) -> list[Path]:
    """The newest checkpoint folder of every trial in a (finished or interrupted) experiment folder."""
    newest = {}
    for config in sorted(experiment_dir.glob(f"*/checkpoint_*/{CONFIG_FILE}")):
        newest[config.parent.parent] = config.parent
    return list(newest.values())


def _read_checkpoint(folder: Path, n_rows: int) -> tuple[dict, float, float, np.ndarray]:
    """Description (config.json), best abs-sum and log-loss, and validation probabilities of one checkpoint."""
    try:
        described = json.loads((folder / CONFIG_FILE).read_text())
        best = described["best_metrics"]
        if not isinstance(described["family"], str):
            raise TypeError("family is not a name")
        best_abs_sum, best_log_loss = float(best["abs_sum"]), float(best["log_loss"])
        probs = np.load(folder / PROBS_FILE, allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EcgtuneError(f"{folder}: unreadable checkpoint ({error})") from None
    if probs.ndim != 2 or probs.shape[0] != n_rows:
        raise EcgtuneError(f"{folder / PROBS_FILE}: probabilities of shape {probs.shape} do not match "
                           f"the {n_rows} rows they should cover")
    return described, best_abs_sum, best_log_loss, probs


def load_library(experiment_dir: Path, labels: np.ndarray, top_k: int = 30) -> list[Member]:
    """The `top_k` best checkpoints by validation abs-sum (ties by log-loss), plus the best of every
    family not among them; each with validation probabilities for the rows of `labels`.

    Trials that learned nothing (no better than always predicting the class prior, in abs-sum or in
    log-loss) are left out: their probabilities would only add noise to the selection."""
    members = []
    for folder in latest_checkpoints(experiment_dir):
        described, best_abs_sum, best_log_loss, probs = _read_checkpoint(folder, len(labels))
        members.append(Member(folder.parent.name, described["family"], (folder,), best_abs_sum, best_log_loss,
                              probs, described))
    if not members:
        raise EcgtuneError(f"{experiment_dir}: no trial checkpoints yet")
    baseline = prior_baseline(labels, members[0].val_probs.shape[1])
    informative = [m for m in members
                   if m.val_abs_sum < baseline["abs_sum"] and m.val_log_loss < baseline["log_loss"]]
    if not informative:
        raise EcgtuneError(f"{experiment_dir}: none of the {len(members)} trials did better than always predicting "
                           f"the class prior (abs-sum {baseline['abs_sum']:.0f}, log-loss {baseline['log_loss']:.3f} "
                           "on the validation rows); give the search more time or more data")
    if len(informative) < len(members):
        warnings.warn(f"{len(members) - len(informative)} trial(s) scored no better than the class prior and are "
                      "left out of the ensemble library", stacklevel=2)
    members = informative
    members.sort(key=lambda m: (m.val_abs_sum, m.val_log_loss, m.trial))
    chosen = members[:top_k]
    families = {m.family for m in chosen}
    for member in members[top_k:]:
        if member.family not in families:
            chosen.append(member)
            families.add(member.family)
    return chosen


def load_fold_library(folds_dir: Path, names: list[str], held_out: list[np.ndarray],
                      labels: np.ndarray) -> list[Member]:
    """Cross-fitted members: for each configuration in `names`, its K fold checkpoints in `folds_dir`
    and its out-of-fold probabilities (fold k predicts the rows `held_out[k]`); scored on `labels`."""
    newest = {folder.parent.name: folder for folder in latest_checkpoints(folds_dir)}
    members = []
    for name in names:
        folders, out_of_fold, family = [], None, None
        for fold, rows in enumerate(held_out):
            folder = newest.get(fold_trial_name(name, fold))
            if folder is None:
                raise EcgtuneError(f"{folds_dir / fold_trial_name(name, fold)}: no checkpoint; that fold's "
                                   "training did not finish (run the command again to resume it)")
            described, _, _, probs = _read_checkpoint(folder, len(rows))
            family = described["family"]
            if out_of_fold is None:
                out_of_fold = np.full((len(labels), probs.shape[1]), np.nan, dtype=np.float32)
            out_of_fold[rows] = probs
            folders.append(folder)
        members.append(Member(name, family, tuple(folders), abs_sum(argmax_decisions(out_of_fold), labels),
                              log_loss(out_of_fold, labels), out_of_fold, described))
    return sorted(members, key=lambda m: (m.val_abs_sum, m.val_log_loss, m.trial))
