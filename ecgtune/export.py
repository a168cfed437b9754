"""Export of an ensemble as a bundle (see `ecgtune.bundle`): the members loaded from their
checkpoints, combined in one PyTorch module, written as one ONNX graph and checked against PyTorch.
Also the calibration that turns a network's multiply-accumulates into seconds on this machine."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ecgtune.bundle import MANIFEST_FILE, ONNX_FILE, SUMS_FILE, open_session, run_in_batches, sha256_of
from ecgtune.ensemble.library import CONFIG_FILE, WEIGHTS_FILE
from ecgtune.errors import EcgtuneError
from ecgtune.models import create_model

PARITY_TOLERANCE = 1e-4
CALIBRATION_LENGTH = 205  # samples per beat of the calibration's reference network


class WeightedSoftmaxAverage(torch.nn.Module):
    """Sum over members of weight x softmax(member logits): the ensemble's probabilities."""

    def __init__(self, members: list[torch.nn.Module], weights: torch.Tensor):
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.register_buffer("weights", weights)

    def forward(self, signals: torch.Tensor) -> torch.Tensor:
        return sum(weight * member(signals).softmax(dim=1) for weight, member in zip(self.weights, self.members))


def load_member(checkpoint: Path):
    """One checkpoint's network (eval mode) and its config.json description."""
    try:
        described = json.loads((checkpoint / CONFIG_FILE).read_text())
        model = create_model(described["family"], n_classes=described["n_classes"],
                             signal_length=described["signal_length"], **described["model_config"])
        model.load_state_dict(load_file(str(checkpoint / WEIGHTS_FILE)))
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as error:
        raise EcgtuneError(f"{checkpoint}: unreadable checkpoint ({error})") from None
    return model.eval(), described


def seconds_per_mac(timed_rows: int = 1024, repeats: int = 3) -> float:
    """This machine's calibration: seconds per multiply-accumulate of a reference network (the default
    dilated_cnn) predicting in ONNX Runtime as `predict` runs it, the best of `repeats` timings. Measured
    once per experiment, it turns a network's deterministic cost into seconds people can read."""
    from ecgtune.models.cost import count_macs

    network = create_model("dilated_cnn").eval()
    probe = torch.rand(8, CALIBRATION_LENGTH)
    graph = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (probe,), graph, input_names=["signals"], opset_version=17, dynamo=False,
                          dynamic_axes={"signals": {0: "batch"}})
    session = open_session(graph.getvalue())
    beats = np.random.default_rng(0).random((timed_rows, CALIBRATION_LENGTH), dtype=np.float32)
    run_in_batches(session, beats[:64])
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_in_batches(session, beats)
        timings.append(time.perf_counter() - started)
    return min(timings) / (timed_rows * count_macs(network, CALIBRATION_LENGTH))


def export_bundle(summary: dict, out_dir: Path, data_fingerprint: dict, seed: int = 0) -> Path:
    """Writes the ensemble described by `summary` (see `ecgtune.ensemble.build_ensemble`) as a bundle.

    The ONNX graph is checked against the PyTorch ensemble on random beats before the bundle is
    written; the folder appears whole or not at all.
    """
    import onnxruntime

    networks, weights, descriptions = [], [], []
    for member in summary["members"]:
        for checkpoint in member["checkpoints"]:
            network, description = load_member(Path(checkpoint))
            networks.append(network)
            weights.append(member["weight"] / len(member["checkpoints"]))
        descriptions.append(description)
    ensemble = WeightedSoftmaxAverage(networks, torch.tensor(weights, dtype=torch.float32)).eval()
    signal_length, n_classes = descriptions[0]["signal_length"], descriptions[0]["n_classes"]
    probe = torch.rand(64, signal_length, generator=torch.Generator().manual_seed(seed))

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(ensemble, (probe,), str(staging / ONNX_FILE), input_names=["signals"],
                              output_names=["probabilities"], opset_version=17, dynamo=False,
                              dynamic_axes={"signals": {0: "batch"}, "probabilities": {0: "batch"}})
        session = onnxruntime.InferenceSession(str(staging / ONNX_FILE), providers=["CPUExecutionProvider"])
        with torch.no_grad():
            expected = ensemble(probe).numpy()
        difference = float(np.abs(session.run(None, {"signals": probe.numpy()})[0] - expected).max())
        if difference > PARITY_TOLERANCE:
            raise RuntimeError(f"ONNX output differs from PyTorch by {difference:.2e}")
        manifest = {
            "format": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "signal_length": signal_length,
            "n_classes": n_classes,
            "members": [{**member, "config": description["model_config"],
                         "train_config": description["train_config"], "imbalance": description["imbalance"]}
                        for member, description in zip(summary["members"], descriptions)],
            "decision_rule": summary["decision_rule"],
            "validation_scores": summary["scores"],
            "training_data": data_fingerprint,
            "onnx_parity_max_difference": difference,
            "versions": {name: _version(name) for name in ("ecgtune", "torch", "numpy", "onnx", "onnxruntime")},
        }
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        sums = "".join(f"{sha256_of(staging / name)}  {name}\n" for name in (ONNX_FILE, MANIFEST_FILE))
        (staging / SUMS_FILE).write_text(sums)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
