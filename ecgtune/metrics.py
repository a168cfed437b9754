"""The competition score ("abs-sum"), decisions made from probabilities, and companions (numpy only).

abs-sum is the sum over rows and classes of |one-hot truth - submitted value|: a confident right answer
costs 0, a confident wrong one 2, and an all-zero row exactly 1.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7  # probabilities are clipped here before a logarithm


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Returns the (n, n_classes) float32 one-hot encoding of integer labels."""
    labels = np.asarray(labels, dtype=np.int64)
    encoded = np.zeros((labels.shape[0], n_classes), dtype=np.float32)
    encoded[np.arange(labels.shape[0]), labels] = 1.0
    return encoded


def abs_sum(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Competition score of submitted values (probabilities or 0/1 decisions) against integer labels."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[0] != len(labels):
        raise ValueError(f"outputs of shape {outputs.shape} do not match {len(labels)} labels")
    return float(np.abs(one_hot(labels, outputs.shape[1]) - outputs).sum())


def argmax_decisions(probs: np.ndarray) -> np.ndarray:
    """One-hot decision for the most probable class of every row."""
    probs = np.asarray(probs)
    return one_hot(probs.argmax(axis=1), probs.shape[1])


def threshold_decisions(probs: np.ndarray, thresholds: float | np.ndarray = 0.5) -> np.ndarray:
    """One-hot decision for the class that clears its threshold by most; all-zero rows where none does.

    With thresholds of 0.5 this is the L1-optimal rule for calibrated probabilities: per class the
    median of the indicator, and a row where no class is above 0.5 costs 1 left empty.
    """
    probs = np.asarray(probs, dtype=np.float64)
    margin = probs - np.broadcast_to(np.asarray(thresholds, dtype=np.float64), probs.shape[1:])
    decisions = argmax_decisions(margin)
    decisions[margin.max(axis=1) <= 0] = 0.0
    return decisions


def log_loss(probs: np.ndarray, labels: np.ndarray, eps: float = EPSILON) -> float:
    """Mean negative log-probability of the true class."""
    probs = np.asarray(probs, dtype=np.float64)
    true_class_probs = probs[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
    return float(-np.log(np.clip(true_class_probs, eps, 1.0)).mean())


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Share of rows whose most probable class is the true one."""
    return float((np.asarray(probs).argmax(axis=1) == np.asarray(labels)).mean())


def classification_report(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The validation figures every trial reports: abs-sum of argmax decisions and of probabilities,
    log-loss and accuracy."""
    return {
        "abs_sum": abs_sum(argmax_decisions(probs), labels),
        "abs_sum_proba": abs_sum(probs, labels),
        "log_loss": log_loss(probs, labels),
        "accuracy": accuracy(probs, labels),
    }


def prior_baseline(labels: np.ndarray, n_classes: int) -> dict[str, float]:
    """What always predicting the class prior of `labels` scores on them: the abs-sum of always deciding
    the majority class, and the log-loss of the prior probabilities. A model that does no better on
    either has learned nothing from the signals."""
    labels = np.asarray(labels, dtype=np.int64)
    prior = np.bincount(labels, minlength=n_classes) / len(labels)
    return {"abs_sum": abs_sum(argmax_decisions(np.tile(prior, (len(labels), 1))), labels),
            "log_loss": log_loss(np.tile(prior, (len(labels), 1)), labels)}
