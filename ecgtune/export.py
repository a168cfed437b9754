"""Export of an ensemble as a bundle (see `ecgtune.bundle`): the members loaded from their
checkpoints, combined in one PyTorch module, written as one ONNX graph and checked against PyTorch.
Also the calibration that turns a network's multiply-accumulates into seconds on this machine."""

from __future__ import annotations

import io
import json
import time
import warnings
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np
import torch

from ecgtune.atomic import clean_staging, make_staging_folder, replace_folder
from ecgtune.bundle import (
    BUNDLE_FILES,
    FORMAT_VERSION,
    MANIFEST_FILE,
    ONNX_FILE,
    SUMS_FILE,
    check_manifest,
    open_session,
    run_in_batches,
    sha256_of,
)
from ecgtune.checkpoint import Checkpoint, load_network, read_checkpoint
from ecgtune.ensemble.summary import EnsembleSummary
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


def load_member(folder: Path) -> tuple[torch.nn.Module, Checkpoint]:
    """The network (eval mode) and the record of the checkpoint in `folder`."""
    checkpoint = read_checkpoint(folder)
    return load_network(checkpoint), checkpoint


def to_onnx(network: torch.nn.Module, probe: torch.Tensor, target) -> None:
    """Writes `network` as an ONNX graph (to a path or a binary stream) with the bundle's names: beats in
    as `signals`, its output as `probabilities`, any batch size. Traced on `probe` by the TorchScript
    exporter, whose warnings about tracing concern code paths these networks do not have."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(network, (probe,), target, input_names=["signals"], output_names=["probabilities"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"signals": {0: "batch"}, "probabilities": {0: "batch"}})


def seconds_per_mac(timed_rows: int = 1024, repeats: int = 3) -> float:
    """This machine's calibration: seconds per multiply-accumulate of a reference network (the default
    dilated_cnn) predicting in ONNX Runtime as `predict` runs it, the best of `repeats` timings. Measured
    once per experiment, it turns a network's deterministic cost into seconds people can read."""
    from ecgtune.models.cost import count_macs

    network = create_model("dilated_cnn").eval()
    graph = io.BytesIO()
    to_onnx(network, torch.rand(8, CALIBRATION_LENGTH), graph)
    session = open_session(graph.getvalue())
    beats = np.random.default_rng(0).random((timed_rows, CALIBRATION_LENGTH), dtype=np.float32)
    run_in_batches(session, beats[:64])
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        run_in_batches(session, beats)
        timings.append(time.perf_counter() - started)
    return min(timings) / (timed_rows * count_macs(network, CALIBRATION_LENGTH))


def export_bundle(summary: EnsembleSummary, out_dir: Path, data_fingerprint: dict, seed: int = 0) -> Path:
    """Writes the ensemble `summary` describes (see `ecgtune.ensemble.build_ensemble`) as a bundle.

    The ONNX graph is checked against the PyTorch ensemble on random beats, and the manifest against
    what `load_bundle` requires, before the bundle is written. It is built beside `out_dir` and swapped
    in (`ecgtune.atomic.replace_folder`), so a complete bundle, old or new, is there at every instant;
    what a killed export left beside it is cleaned up first.
    """
    import onnxruntime

    networks, weights, records = [], [], []
    for member in summary.members:
        for folder in member.checkpoints:
            network, checkpoint = load_member(Path(folder))
            networks.append(network)
            weights.append(member.weight / len(member.checkpoints))
        records.append(checkpoint)
    ensemble = WeightedSoftmaxAverage(networks, torch.tensor(weights, dtype=torch.float32)).eval()
    signal_length, n_classes = records[0].signal_length, records[0].n_classes
    probe = torch.rand(64, signal_length, generator=torch.Generator().manual_seed(seed))

    clean_staging(out_dir)
    staging = make_staging_folder(out_dir)
    try:
        to_onnx(ensemble, probe, str(staging / ONNX_FILE))
        session = onnxruntime.InferenceSession(str(staging / ONNX_FILE), providers=["CPUExecutionProvider"])
        with torch.no_grad():
            expected = ensemble(probe).numpy()
        difference = float(np.abs(session.run(None, {"signals": probe.numpy()})[0] - expected).max())
        if difference > PARITY_TOLERANCE:
            raise RuntimeError(f"ONNX output differs from PyTorch by {difference:.2e}")
        manifest = {
            "format": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "signal_length": signal_length,
            "n_classes": n_classes,
            "members": [{**asdict(member), "config": checkpoint.model_config,
                         "train_config": checkpoint.train_config, "imbalance": checkpoint.imbalance}
                        for member, checkpoint in zip(summary.members, records)],
            "decision_rule": summary.decision_rule.to_dict(),
            "validation_scores": summary.scores,
            "training_data": data_fingerprint,
            "onnx_parity_max_difference": difference,
            "versions": {name: _version(name) for name in ("ecgtune", "torch", "numpy", "onnx", "onnxruntime")},
        }
        check_manifest(manifest, out_dir / MANIFEST_FILE)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        sums = "".join(f"{sha256_of(staging / name)}  {name}\n" for name in BUNDLE_FILES)
        (staging / SUMS_FILE).write_text(sums)
        replace_folder(staging, out_dir)
    except BaseException:
        clean_staging(out_dir)  # the staging folder goes; an old bundle renamed aside comes back
        raise
    return out_dir


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
