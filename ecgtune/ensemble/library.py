"""The library of models an ensemble is chosen from: the trials' best-epoch checkpoints, or the
cross-fitted members (one configuration trained on K folds, its out-of-fold probabilities joined)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgtune.checkpoint import PROBS_FILE, Checkpoint, read_checkpoint
from ecgtune.errors import EcgtuneError
from ecgtune.metrics import abs_sum, argmax_decisions, log_loss, prior_baseline


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
    description: dict = field(default_factory=dict, compare=False)  # `Checkpoint.description()`


def fold_trial_name(member: str, fold: int) -> str:
    """The folder of the cross-fitting trial that trains configuration `member` without fold `fold`."""
    return f"{member}_fold{fold}"


def _read_covering(folder: Path, n_rows: int) -> Checkpoint:
    """A checkpoint, its validation probabilities checked to cover the `n_rows` rows they predict."""
    checkpoint = read_checkpoint(folder)
    if len(checkpoint.val_probs) != n_rows:
        raise EcgtuneError(f"{folder / PROBS_FILE}: probabilities of shape {checkpoint.val_probs.shape} do not match "
                           f"the {n_rows} rows they should cover")
    return checkpoint


def _best_scores(checkpoint: Checkpoint) -> tuple[float, float]:
    """The validation abs-sum and log-loss of the checkpoint's best epoch."""
    try:
        return float(checkpoint.kept_metrics["abs_sum"]), float(checkpoint.kept_metrics["log_loss"])
    except (KeyError, TypeError, ValueError):
        raise EcgtuneError(f"{checkpoint.folder}: unreadable checkpoint (no validation abs-sum and log-loss)") from None


def load_library(experiment_dir: Path, labels: np.ndarray, top_k: int = 30) -> list[Member]:
    """The `top_k` best checkpoints by validation abs-sum (ties by log-loss), plus the best of every
    family not among them; each with validation probabilities for the rows of `labels`.

    Trials that learned nothing (no better than always predicting the class prior, in abs-sum or in
    log-loss) are left out: their probabilities would only add noise to the selection. So is a
    checkpoint that cannot be read (a full disk truncates files), with a warning naming it."""
    # Ray's folders are the search layer's to read. Imported here, not at the top: its package imports torch,
    # and `import ecgtune.ensemble` stays numpy-only (`predict` runs on ONNX Runtime).
    from ecgtune.raytune.tune_layout import latest_checkpoints

    members, unreadable = [], []
    for trial, folder in latest_checkpoints(experiment_dir).items():
        try:
            checkpoint = _read_covering(folder, len(labels))
            best_abs_sum, best_log_loss = _best_scores(checkpoint)
        except EcgtuneError as error:
            unreadable.append(str(error))
            continue
        members.append(Member(trial, checkpoint.family, (folder,), best_abs_sum, best_log_loss, checkpoint.val_probs,
                              checkpoint.description()))
    if unreadable and members:
        warnings.warn(f"{len(unreadable)} checkpoint(s) left out of the ensemble library: {'; '.join(unreadable)}",
                      stacklevel=2)
    if not members:
        raise EcgtuneError(unreadable[0] if unreadable else f"{experiment_dir}: no trial checkpoints yet")
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
    from ecgtune.raytune.tune_layout import latest_checkpoints

    newest = latest_checkpoints(folds_dir)
    members = []
    for name in names:
        folders, out_of_fold = [], None
        for fold, rows in enumerate(held_out):
            folder = newest.get(fold_trial_name(name, fold))
            if folder is None:
                raise EcgtuneError(f"{folds_dir / fold_trial_name(name, fold)}: no checkpoint; that fold's "
                                   "training did not finish (run the command again to resume it)")
            checkpoint = _read_covering(folder, len(rows))
            if out_of_fold is None:
                out_of_fold = np.full((len(labels), checkpoint.n_classes), np.nan, dtype=np.float32)
            out_of_fold[rows] = checkpoint.val_probs
            folders.append(folder)
        members.append(Member(name, checkpoint.family, tuple(folders), abs_sum(argmax_decisions(out_of_fold), labels),
                              log_loss(out_of_fold, labels), out_of_fold, checkpoint.description()))
    return sorted(members, key=lambda m: (m.val_abs_sum, m.val_log_loss, m.trial))
