"""The exported ensemble: one folder holding a single ONNX graph (every member, its weight and the
softmax average; probabilities out, any batch size), `manifest.json` and `SHA256SUMS`.

Loading verifies the checksums and refuses a tampered or truncated bundle; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgtune.ensemble import DecisionRule
from ecgtune.errors import DataError

ONNX_FILE, MANIFEST_FILE, SUMS_FILE = "ensemble.onnx", "manifest.json", "SHA256SUMS"
PREDICT_BATCH_SIZE = 512


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Bundle:
    """A loaded, verified bundle: `predict_proba` runs the ONNX graph, `decide` applies the rule."""

    folder: Path
    manifest: dict
    session: object

    @property
    def rule(self) -> DecisionRule:
        rule = self.manifest["decision_rule"]
        return DecisionRule(np.asarray(rule["thresholds"], dtype=np.float64), rule["fallback"])

    def predict_proba(self, signals: np.ndarray, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Ensemble probabilities, (rows, classes)."""
        if len(signals) == 0:
            return np.zeros((0, self.manifest["n_classes"]), np.float32)
        return run_in_batches(self.session, signals, batch_size)

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Values to submit: the learned decision rule applied to the probabilities."""
        return self.rule.decide(probs)


def open_session(model: str | bytes):
    """An ONNX Runtime session for a model file or its bytes, on CUDA when ONNX Runtime has it."""
    import onnxruntime

    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                 if p in onnxruntime.get_available_providers()]
    return onnxruntime.InferenceSession(model, providers=providers)


def run_in_batches(session, signals: np.ndarray, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
    """The session's output for (rows > 0, samples) beats, computed `batch_size` rows at a time."""
    signals = np.ascontiguousarray(signals, dtype=np.float32)
    return np.concatenate([session.run(None, {"signals": signals[start:start + batch_size]})[0]
                           for start in range(0, len(signals), batch_size)])


def load_bundle(folder: str | Path) -> Bundle:
    """Opens a bundle after checking every file against SHA256SUMS (CUDA when ONNX Runtime has it)."""
    folder = Path(folder)
    sums_path = folder / SUMS_FILE
    if not sums_path.is_file():
        raise DataError(f"{folder}: not a bundle ({SUMS_FILE} is missing)")
    listed = {}
    for number, line in enumerate(sums_path.read_text().splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{sums_path}: line {number} is not '<sha256>  <file>'")
        listed[name] = digest
    for name in (ONNX_FILE, MANIFEST_FILE):
        if name not in listed:
            raise DataError(f"{sums_path}: {name} is not listed")
    for name, digest in listed.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing from the bundle")
        if sha256_of(path) != digest:
            raise DataError(f"{path}: checksum mismatch; the bundle was changed or truncated")
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    return Bundle(folder, manifest, open_session(str(folder / ONNX_FILE)))
