"""The exported ensemble: one folder holding a single ONNX graph (every member, its weight and the
softmax average; probabilities out, any batch size), `manifest.json` and `SHA256SUMS`.

Loading trusts nothing: the folder must hold exactly those three regular files, the checksums must
match, the manifest must have every field prediction uses with a valid type and range, and the graph's
input and output shapes must agree with it. Anything else is one `DataError` naming the file and the
problem. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgtune.ensemble import DecisionRule
from ecgtune.ensemble.decision import FALLBACKS
from ecgtune.errors import DataError

ONNX_FILE, MANIFEST_FILE, SUMS_FILE = "ensemble.onnx", "manifest.json", "SHA256SUMS"
BUNDLE_FILES = (ONNX_FILE, MANIFEST_FILE)  # the files SHA256SUMS lists, in this order
FORMAT_VERSION = 1
PREDICT_BATCH_SIZE = 512
WEIGHT_SUM_TOLERANCE = 1e-6
PROBABILITY_TOLERANCE = 1e-4  # float32 softmax sums may stray this far past 0 and 1


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
        return DecisionRule.from_dict(self.manifest["decision_rule"])

    def predict(self, signals) -> np.ndarray:
        """The values to submit, (rows, classes): the learned decision rule on the probabilities, as
        `python -m ecgtune predict` writes them. `signals`: as for `predict_proba`."""
        return self.decide(self.predict_proba(signals))

    def predict_proba(self, signals, batch_size: int = PREDICT_BATCH_SIZE) -> np.ndarray:
        """Ensemble probabilities, (rows, classes), of `signals`: a (rows, samples) array, or a pandas
        DataFrame in the competition format (checked as a file is). Beats of the wrong length or with
        NaN, and a graph that fails or gives anything but probabilities of that shape, raise `DataError`."""
        signals = self._checked(signals)
        expected_shape = (len(signals), self.manifest["n_classes"])
        if len(signals) == 0:
            return np.zeros(expected_shape, np.float32)
        graph = self.folder / ONNX_FILE
        try:
            probs = run_in_batches(self.session, signals, batch_size)
        except Exception as error:  # ONNX Runtime's errors have no common base class below Exception
            raise DataError(f"{graph}: the graph failed on the data ({_one_line(error)})") from None
        if probs.shape != expected_shape:
            raise DataError(f"{graph}: the graph gave an output of shape {probs.shape}, "
                            f"expected {expected_shape} (rows, classes)")
        # written as a negation so that NaN, which fails every comparison, is refused too
        if not np.all((probs >= -PROBABILITY_TOLERANCE) & (probs <= 1 + PROBABILITY_TOLERANCE)):
            raise DataError(f"{graph}: the graph gave values that are not probabilities (NaN or outside [0, 1])")
        return probs

    def decide(self, probs: np.ndarray) -> np.ndarray:
        """Values to submit: the learned decision rule applied to the probabilities."""
        return self.rule.decide(probs)

    def _checked(self, signals) -> np.ndarray:
        """Beats as a float32 array of the bundle's signal length (a DataFrame goes through the file parser)."""
        length = self.manifest["signal_length"]
        if hasattr(signals, "columns"):  # a DataFrame; pandas itself is not imported for a file's predictions
            from ecgtune.data.files import read_frame

            return read_frame(signals, signal_length=length).signals
        signals = np.asarray(signals, dtype=np.float32)
        if signals.ndim != 2 or signals.shape[1] != length:
            raise DataError(f"signals of shape {signals.shape}: {signals.shape[-1] if signals.ndim else 0} samples per "
                            f"beat; the bundle expects {length} (rows, {length})")
        if not np.isfinite(signals).all():
            row = int(np.argmax(~np.isfinite(signals).all(axis=1)))
            raise DataError(f"signals row {row}: NaN or infinite samples")
        return signals


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
    """Opens a bundle after validating it (see the module's docstring); CUDA when ONNX Runtime has it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a bundle ({'not a folder' if folder.exists() else 'no such folder'})")
    _verify_files(folder)
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_manifest(manifest_path)
    check_manifest(manifest, manifest_path)
    return Bundle(folder, manifest, _open_graph(folder / ONNX_FILE, manifest))


def _verify_files(folder: Path) -> None:
    """Checks that `folder` holds exactly the bundle's files and SHA256SUMS, all regular files (a
    symbolic link could make a verified bundle read anything), and that every checksum matches."""
    entries = {path.name for path in folder.iterdir()}
    if SUMS_FILE not in entries:
        raise DataError(f"{folder}: not a bundle ({SUMS_FILE} is missing)")
    unexpected = sorted(entries - {SUMS_FILE, *BUNDLE_FILES})
    if unexpected:
        shown = ", ".join(unexpected[:5]) + (", ..." if len(unexpected) > 5 else "")
        raise DataError(f"{folder}: unexpected entries in the bundle ({shown}); "
                        f"a bundle holds only {', '.join(BUNDLE_FILES)} and {SUMS_FILE}")
    sums_path = folder / SUMS_FILE
    _require_regular_file(sums_path)
    listed = _read_sums(sums_path)
    for name in BUNDLE_FILES:
        path = folder / name
        _require_regular_file(path)
        if sha256_of(path) != listed[name]:
            raise DataError(f"{path}: checksum mismatch; the bundle was changed or truncated")


def _require_regular_file(path: Path) -> None:
    """Raises `DataError` unless `path` is a regular file itself (checked without following links)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise DataError(f"{path}: missing from the bundle") from None
    if stat.S_ISLNK(mode):
        raise DataError(f"{path}: is a symbolic link; a bundle's files must be regular files in its folder")
    if not stat.S_ISREG(mode):
        raise DataError(f"{path}: not a regular file")


def _read_sums(path: Path) -> dict[str, str]:
    """{file name: lower-case hex digest} from `<sha256>  <name>` lines that list every bundle file
    once, by its plain name."""
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a checksum list (not ASCII text)") from None
    listed = {}
    for number, line in enumerate(text.splitlines(), start=1):
        digest, _, name = line.partition("  ")
        if not re.fullmatch(r"[0-9a-fA-F]{64}", digest) or not name:
            raise DataError(f"{path}: line {number} is not '<sha256>  <file>'")
        # only the bundle's own names: no path, absolute or relative, can point outside the folder
        if name not in BUNDLE_FILES:
            raise DataError(f"{path}: line {number} lists {name!r}; {SUMS_FILE} may list only "
                            f"{', '.join(BUNDLE_FILES)}, by name")
        if name in listed:
            raise DataError(f"{path}: {name} is listed twice")
        listed[name] = digest.lower()
    for name in BUNDLE_FILES:
        if name not in listed:
            raise DataError(f"{path}: {name} is not listed")
    return listed


def _read_manifest(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") from None
    except RecursionError:
        raise DataError(f"{path}: not valid JSON (nested too deeply)") from None


def check_manifest(manifest: object, path: Path) -> None:
    """Checks the type and range of every manifest field that prediction uses; the first that fails
    raises `DataError` naming `path` and the field."""
    if not isinstance(manifest, dict):
        raise DataError(f"{path}: expected a JSON object, found {_shown(manifest)}")
    version = _field(manifest, "format", path)
    if not _is_int(version) or version != FORMAT_VERSION:
        raise _invalid(path, "format", version, f"{FORMAT_VERSION}, the bundle format this ecgtune reads")
    n_classes = _field(manifest, "n_classes", path)
    if not _is_int(n_classes) or n_classes < 2:
        raise _invalid(path, "n_classes", n_classes, "an integer >= 2")
    signal_length = _field(manifest, "signal_length", path)
    if not _is_int(signal_length) or signal_length < 1:
        raise _invalid(path, "signal_length", signal_length, "an integer >= 1")

    rule = _field(manifest, "decision_rule", path)
    if not isinstance(rule, dict):
        raise _invalid(path, "decision_rule", rule, "an object with thresholds and fallback")
    thresholds = _field(rule, "thresholds", path, "decision_rule.")
    if not isinstance(thresholds, list) or len(thresholds) != n_classes:
        raise _invalid(path, "decision_rule.thresholds", thresholds, f"a list of {n_classes} numbers, one per class")
    for index, threshold in enumerate(thresholds):
        if not _is_number(threshold) or not 0 <= threshold <= 1:  # NaN fails the comparison
            raise _invalid(path, f"decision_rule.thresholds[{index}]", threshold, "a number in [0, 1]")
    fallback = _field(rule, "fallback", path, "decision_rule.")
    if fallback not in FALLBACKS:
        raise _invalid(path, "decision_rule.fallback", fallback, f"one of {', '.join(FALLBACKS)}")

    members = _field(manifest, "members", path)
    if not isinstance(members, list) or not members:
        raise _invalid(path, "members", members, "a non-empty list")
    for index, member in enumerate(members):
        if not isinstance(member, dict):
            raise _invalid(path, f"members[{index}]", member, "an object with a weight")
        weight = _field(member, "weight", path, f"members[{index}].")
        if not _is_number(weight) or not 0 <= weight <= 1:  # each of weights summing to 1; NaN fails
            raise _invalid(path, f"members[{index}].weight", weight, "a number in [0, 1]")
    total = math.fsum(member["weight"] for member in members)
    if abs(total - 1) > WEIGHT_SUM_TOLERANCE:
        raise DataError(f"{path}: the members' weights sum to {total:.9g}; expected 1")


def _field(mapping: dict, key: str, path: Path, prefix: str = ""):
    if key not in mapping:
        raise DataError(f"{path}: {prefix}{key} is missing")
    return mapping[key]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a number


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _invalid(path: Path, field: str, value, expected: str) -> DataError:
    return DataError(f"{path}: {field} is {_shown(value)}; expected {expected}")


def _shown(value, limit: int = 60) -> str:
    """`value` as JSON on one short line (NaN shows as NaN, as in the file)."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _open_graph(path: Path, manifest: dict):
    """The ONNX Runtime session of `path`, after checking that the graph takes any number of beats of
    the manifest's signal_length and returns n_classes values per beat."""
    try:
        session = open_session(str(path))
    except Exception as error:  # ONNX Runtime's errors have no common base class below Exception
        raise DataError(f"{path}: not a loadable ONNX model ({_one_line(error)})") from None
    signal_length, n_classes = manifest["signal_length"], manifest["n_classes"]
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if (len(inputs) != 1 or inputs[0].name != "signals" or inputs[0].type != "tensor(float)"
            or not _batch_of(inputs[0].shape, signal_length)):
        raise DataError(f"{path}: the graph takes {_described(inputs)}; expected one input, signals of "
                        f"tensor(float) [batch, {signal_length}] ({MANIFEST_FILE}'s signal_length)")
    if not outputs or not _batch_of(outputs[0].shape, n_classes):
        raise DataError(f"{path}: the graph gives {_described(outputs)}; expected [batch, {n_classes}] "
                        f"({MANIFEST_FILE}'s n_classes)")
    return session


def _batch_of(shape: list, width: int) -> bool:
    """Whether an ONNX shape is [any number of rows, `width`]: the row dimension symbolic (a name or
    None), as the exporter writes it, so that every batch size runs."""
    return len(shape) == 2 and not isinstance(shape[0], int) and shape[1] == width


def _described(values: list) -> str:
    return ", ".join(f"{value.name} of {value.type} {value.shape}" for value in values) or "nothing"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
