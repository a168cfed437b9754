import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import competition_csv
from safetensors.torch import save_file

onnxruntime = pytest.importorskip("onnxruntime")

from ecgtune.bundle import BUNDLE_FILES, MANIFEST_FILE, ONNX_FILE, SUMS_FILE, Bundle, load_bundle  # noqa: E402
from ecgtune.checkpoint import CONFIG_FILE, PROBS_FILE, WEIGHTS_FILE  # noqa: E402
from ecgtune.ensemble import ChosenMember, DecisionRule, EnsembleSummary  # noqa: E402
from ecgtune.errors import DataError  # noqa: E402
from ecgtune.export import WeightedSoftmaxAverage, export_bundle, to_onnx  # noqa: E402
from ecgtune.models import create_model, list_models  # noqa: E402


@pytest.mark.parametrize("length", [205, 97])
def test_onnx_graph_of_all_families_matches_pytorch(tmp_path, length):
    torch.manual_seed(0)
    members = []
    for family in list_models():
        model = create_model(family)
        model.train()
        for _ in range(3):  # move batch-norm statistics away from their initial values
            model(torch.rand(32, length) * 2)
        members.append(model.eval())
    ensemble = WeightedSoftmaxAverage(members, torch.full((len(members),), 1 / len(members))).eval()
    to_onnx(ensemble, torch.rand(5, length), str(tmp_path / "e.onnx"))
    session = onnxruntime.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    signals = torch.rand(37, length)
    with torch.no_grad():
        expected = ensemble(signals).numpy()
    np.testing.assert_allclose(session.run(None, {"signals": signals.numpy()})[0], expected, atol=1e-4)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, atol=1e-5)


# A bundle is validated before it is trusted; `predict` refuses bad bundles and unsafe outputs with one
# line and exit code 2. The checksums of every tampered bundle are regenerated: they prove nothing.

TINY_CONFIG = {"widths": [4, 4], "kernel_sizes": [3, 3], "hidden": [8]}
GOOD_RULE = {"thresholds": [0.5, 0.5, 0.5, 0.5], "fallback": "zeros"}


def _summary(root: Path, decision_rule: dict = GOOD_RULE) -> EnsembleSummary:
    """An ensemble summary of one untrained tiny plain_cnn checkpoint written under `root`."""
    checkpoint = root / "checkpoint"
    checkpoint.mkdir(exist_ok=True)
    torch.manual_seed(0)
    model = create_model("plain_cnn", n_classes=4, **TINY_CONFIG)
    save_file(model.state_dict(), str(checkpoint / WEIGHTS_FILE))
    (checkpoint / CONFIG_FILE).write_text(json.dumps({
        "family": "plain_cnn", "n_classes": 4, "signal_length": 205, "model_config": TINY_CONFIG,
        "train_config": {}, "imbalance": "none", "sampled": {}, "kept_epoch": 0, "kept_metrics": {},
        "epochs_trained": 0, "training_rows": 0, "seconds": 0.0}))
    np.save(checkpoint / PROBS_FILE, np.zeros((0, 4), dtype=np.float32))
    member = ChosenMember("t0", "plain_cnn", [str(checkpoint)], weight=1.0, val_abs_sum=0.0, val_log_loss=0.0)
    return EnsembleSummary(members=[member], decision_rule=DecisionRule.from_dict(decision_rule), scores={},
                           validation_rows=0, ensemble_log_loss=0.0, trajectory=[], kept_steps=None,
                           fell_back_to_best_single=False, library=["t0"])


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    return export_bundle(_summary(root), root / "bundle", {})


@pytest.fixture
def bundle(exported, tmp_path) -> Path:
    """A fresh copy of the exported bundle, to tamper with."""
    return Path(shutil.copytree(exported, tmp_path / "bundle"))


@pytest.fixture
def beats(tmp_path) -> Path:
    signals = np.random.default_rng(0).random((7, 205))
    return competition_csv(tmp_path / "beats.csv", signals, ids=range(100, 107))


def _resum(bundle: Path, extra: str = "") -> None:
    """Rewrites SHA256SUMS to match whatever the bundle's files now hold."""
    lines = "".join(f"{hashlib.sha256((bundle / name).read_bytes()).hexdigest()}  {name}\n" for name in BUNDLE_FILES)
    (bundle / SUMS_FILE).write_text(lines + extra)


def _edit_manifest(bundle: Path, edit) -> None:
    manifest = json.loads((bundle / MANIFEST_FILE).read_text())
    edit(manifest)
    (bundle / MANIFEST_FILE).write_text(json.dumps(manifest))
    _resum(bundle)


def _write(bundle: Path, name: str, content: bytes) -> None:
    (bundle / name).write_bytes(content)
    _resum(bundle)


def _snapshot(folder: Path) -> dict:
    """Every entry of `folder`: a file's bytes, a link's target."""
    return {path.name: os.readlink(path) if path.is_symlink() else path.read_bytes() for path in folder.iterdir()}


def _predict(bundle: Path, data: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ecgtune", "predict", "--bundle", str(bundle), "--data", str(data),
                           "--out", str(out), "--no-cache"], capture_output=True, text=True, timeout=300,
                          check=False)


def _assert_refused(result: subprocess.CompletedProcess, named: Path, problem: str) -> None:
    """Exit code 2, no traceback, and one error line that names `named` and says `problem`."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {named}:") and problem in errors[0], errors[0]


def _nan_thresholds(bundle):
    _edit_manifest(bundle, lambda m: m["decision_rule"].update(thresholds=[0.22, float("nan"), 0.5, 0.5]))


def _symlink_onnx(bundle):
    outside = bundle.parent / "outside.txt"
    outside.write_text("root:x:0:0:root:/root:/bin/sh\n")
    (bundle / ONNX_FILE).unlink()
    (bundle / ONNX_FILE).symlink_to(outside)
    _resum(bundle)


def _sums_traversal(bundle):
    _resum(bundle, extra=f"{'0' * 64}  ../../../../../etc/passwd\n")


HOSTILE_BUNDLES = {
    "nan threshold": (_nan_thresholds, MANIFEST_FILE, "decision_rule.thresholds[1] is NaN"),
    "truncated manifest": (lambda b: _write(b, MANIFEST_FILE, b'{"format": 1, '), MANIFEST_FILE, "not valid JSON"),
    "no decision rule": (lambda b: _edit_manifest(b, lambda m: m.pop("decision_rule")), MANIFEST_FILE,
                         "decision_rule is missing"),
    "3 thresholds, 4 classes": (lambda b: _edit_manifest(b, lambda m: m["decision_rule"].update(thresholds=[0.5] * 3)),
                                MANIFEST_FILE, "expected a list of 4 numbers"),
    "garbage onnx": (lambda b: _write(b, ONNX_FILE, b"not a model" * 50), ONNX_FILE, "not a loadable ONNX model"),
    "empty onnx": (lambda b: _write(b, ONNX_FILE, b""), ONNX_FILE, "not a loadable ONNX model"),
    "onnx symlinked outside": (_symlink_onnx, ONNX_FILE, "is a symbolic link"),
    "sums name a path": (_sums_traversal, SUMS_FILE, "lists '../../../../../etc/passwd'"),
}


@pytest.mark.parametrize("case", HOSTILE_BUNDLES)
def test_predict_refuses_a_hostile_bundle_in_one_line(bundle, beats, tmp_path, case):
    tamper, named, problem = HOSTILE_BUNDLES[case]
    tamper(bundle)
    before = _snapshot(bundle)
    result = _predict(bundle, beats, tmp_path / "submission.csv")
    _assert_refused(result, bundle if named is None else bundle / named, problem)
    assert _snapshot(bundle) == before and not (tmp_path / "submission.csv").exists()


def test_predict_writes_probabilities_and_decisions(bundle, beats, tmp_path):
    result = _predict(bundle, beats, tmp_path / "submission.csv")
    assert result.returncode == 0, result.stderr
    rows = (tmp_path / "submission.csv").read_text().splitlines()
    assert rows[0] == "id,label_0,label_1,label_2,label_3" and [row.split(",")[0] for row in rows[1:]] == [
        str(row_id) for row_id in range(100, 107)]


def _same_file_by_another_path(tmp_path, beats):
    (tmp_path / "elsewhere").mkdir()
    return tmp_path / "elsewhere" / ".." / beats.name


def _hard_link(tmp_path, beats):
    os.link(beats, tmp_path / "linked.csv")
    return tmp_path / "linked.csv"


@pytest.mark.parametrize("out", [lambda tmp_path, beats: beats, _same_file_by_another_path, _hard_link],
                         ids=["same path", "another path", "hard link"])
def test_predict_refuses_to_overwrite_its_data(bundle, beats, tmp_path, out):
    out = out(tmp_path, beats)
    original = beats.read_bytes()
    entries = sorted(tmp_path.iterdir())
    _assert_refused(_predict(bundle, beats, out), out, "is the --data file")
    assert beats.read_bytes() == original and sorted(tmp_path.iterdir()) == entries


@pytest.mark.parametrize("inside", [MANIFEST_FILE, "submission.csv", "."])
def test_predict_refuses_an_output_inside_the_bundle(bundle, beats, inside):
    before = _snapshot(bundle)
    out = bundle / inside
    _assert_refused(_predict(bundle, beats, out), out, "is the bundle folder")
    assert _snapshot(bundle) == before


def test_predict_names_the_users_path_when_out_is_a_folder(bundle, beats, tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    _assert_refused(_predict(bundle, beats, folder), folder, "is not a regular file")
    assert list(folder.iterdir()) == [] and not list(tmp_path.glob(".results.*"))


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, where no file can be created")
def test_predict_names_the_users_path_when_the_write_fails(bundle, beats):
    out = Path("/proc/self/submission.csv")
    _assert_refused(_predict(bundle, beats, out), out, "cannot write the submission")


def test_exported_bundle_loads_and_predicts_probabilities(exported):
    loaded = load_bundle(exported)
    probs = loaded.predict_proba(np.random.default_rng(1).random((9, 205)))
    assert probs.shape == (9, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert set(np.unique(loaded.decide(probs))) <= {0.0, 1.0}
    assert loaded.predict_proba(np.zeros((0, 205))).shape == (0, 4)


def _weights(*weights):
    return lambda m: m.update(members=[{"weight": weight} for weight in weights])


MANIFEST_CASES = {
    "format 2": (lambda m: m.update(format=2), "format is 2; expected 1"),
    "format as text": (lambda m: m.update(format="1"), 'format is "1"'),
    "n_classes true": (lambda m: m.update(n_classes=True), "n_classes is true; expected an integer >= 2"),
    "one class": (lambda m: m.update(n_classes=1), "n_classes is 1"),
    "signal_length as text": (lambda m: m.update(signal_length="205"), 'signal_length is "205"'),
    "signal_length 0": (lambda m: m.update(signal_length=0), "signal_length is 0; expected an integer >= 1"),
    "threshold above 1": (lambda m: m["decision_rule"].update(thresholds=[0.5, 1.5, 0.5, 0.5]), "decision_rule.thresholds[1] is 1.5; expected a number in [0, 1]"),
    "threshold as text": (lambda m: m["decision_rule"].update(thresholds=["0.5", 0.5, 0.5, 0.5]), 'decision_rule.thresholds[0] is "0.5"'),
    "infinite threshold": (lambda m: m["decision_rule"].update(thresholds=[0.5, 0.5, 0.5, float("inf")]),
                           "decision_rule.thresholds[3] is Infinity"),
    "unknown fallback": (lambda m: m["decision_rule"].update(fallback="guess"), "decision_rule.fallback is \"guess\""),
    "rule is a list": (lambda m: m.update(decision_rule=[0.5]), "decision_rule is [0.5]"),
    "no fallback": (lambda m: m["decision_rule"].pop("fallback"), "decision_rule.fallback is missing"),
    "no members": (_weights(), "members is []; expected a non-empty list"),
    "negative weight": (_weights(1.5, -0.5), "members[0].weight is 1.5"),
    "weights sum to 0.9": (_weights(0.6, 0.3), "the members' weights sum to 0.9; expected 1"),
    "nan weight": (_weights(float("nan")), "members[0].weight is NaN"),
    "member not an object": (lambda m: m.update(members=[0.5, 0.5]), "members[0] is 0.5"),
}


@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_manifest_schema(bundle, case):
    edit, problem = MANIFEST_CASES[case]
    _edit_manifest(bundle, edit)
    with pytest.raises(DataError, match=re.escape(f"{bundle / MANIFEST_FILE}: {problem}")):
        load_bundle(bundle)


def test_weights_may_miss_1_by_rounding(bundle):
    _edit_manifest(bundle, _weights(0.1, 0.2, 0.7 + 1e-9))
    load_bundle(bundle)


@pytest.mark.parametrize("content, problem", [
    (b"[1, 2]", "expected a JSON object, found [1, 2]"),
    (b"\xff\xfe{}", "not UTF-8 text"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON (nested too deeply)"),
])
def test_manifest_that_is_not_a_json_object(bundle, content, problem):
    _write(bundle, MANIFEST_FILE, content)
    with pytest.raises(DataError, match=re.escape(f"{bundle / MANIFEST_FILE}: {problem}")):
        load_bundle(bundle)


@pytest.mark.parametrize("edit, problem", [
    (lambda m: m.update(n_classes=5, decision_rule={**GOOD_RULE, "thresholds": [0.5] * 5}),
     "the graph gives probabilities of tensor(float) ['batch', 4]; expected [batch, 5]"),
    (lambda m: m.update(signal_length=100), "the graph takes signals of tensor(float) ['batch', 205]"),
])
def test_manifest_must_agree_with_the_graph(bundle, edit, problem):
    _edit_manifest(bundle, edit)
    with pytest.raises(DataError, match=re.escape(f"{bundle / ONNX_FILE}: {problem}")):
        load_bundle(bundle)


def test_graph_with_a_fixed_batch_size_is_refused(bundle):
    from onnx import TensorProto, helper

    signals = helper.make_tensor_value_info("signals", TensorProto.FLOAT, [1, 205])
    probs = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, 4])
    weights = helper.make_tensor("w", TensorProto.FLOAT, [205, 4], [0.25 / 205] * 820)
    graph = helper.make_graph([helper.make_node("MatMul", ["signals", "w"], ["probabilities"])], "g",
                              [signals], [probs], [weights])
    _write(bundle, ONNX_FILE, helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(DataError, match=re.escape("signals of tensor(float) [1, 205]")):
        load_bundle(bundle)


class _StubSession:
    """Stands in for an ONNX Runtime session that returns `output` or raises `error`."""

    def __init__(self, output=None, error=None):
        self.output, self.error = output, error

    def run(self, names, feeds):
        if self.error:
            raise self.error
        return [self.output]


@pytest.mark.parametrize("session, problem", [
    (_StubSession(np.full((3, 3), 1 / 3, np.float32)), "an output of shape (3, 3), expected (3, 4)"),
    (_StubSession(np.full((3, 4), np.nan, np.float32)), "not probabilities"),
    (_StubSession(np.full((3, 4), 2.0, np.float32)), "not probabilities"),
    (_StubSession(error=RuntimeError("[ONNXRuntimeError] : 6 :\nRUNTIME_EXCEPTION")),
     "the graph failed on the data ([ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION)"),
])
def test_predict_proba_refuses_what_the_graph_should_not_give(exported, session, problem):
    manifest = json.loads((exported / MANIFEST_FILE).read_text())
    with pytest.raises(DataError, match=re.escape(f"{exported / ONNX_FILE}: ") + ".*" + re.escape(problem)):
        Bundle(exported, manifest, session).predict_proba(np.zeros((3, 205), np.float32))


def _extra_entry(bundle):
    (bundle / "notes.txt").write_text("hello")


def _sub_folder(bundle):
    (bundle / "extra").mkdir()


def _linked_sums(bundle):
    (bundle.parent / "sums").write_bytes((bundle / SUMS_FILE).read_bytes())
    (bundle / SUMS_FILE).unlink()
    (bundle / SUMS_FILE).symlink_to(bundle.parent / "sums")


def _onnx_folder(bundle):
    (bundle / ONNX_FILE).unlink()
    (bundle / ONNX_FILE).mkdir()


def _fifo_manifest(bundle):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    (bundle / MANIFEST_FILE).unlink()
    os.mkfifo(bundle / MANIFEST_FILE)


FOLDER_CASES = {
    "absolute path listed": (lambda b: _resum(b, f"{'0' * 64}  /etc/passwd\n"), SUMS_FILE, "line 3 lists '/etc/passwd'"),
    "listed twice": (lambda b: _resum(b, (b / SUMS_FILE).read_text().splitlines(keepends=True)[1]), SUMS_FILE,
                     "manifest.json is listed twice"),
    "not listed": (lambda b: (b / SUMS_FILE).write_text((b / SUMS_FILE).read_text().splitlines()[0] + "\n"),
                   SUMS_FILE, "manifest.json is not listed"),
    "sums not text": (lambda b: (b / SUMS_FILE).write_bytes(b"\xff\xfe\x00"), SUMS_FILE, "not a checksum list (not ASCII text)"),
    "malformed line": (lambda b: _resum(b, "0123  manifest.json\n"), SUMS_FILE, "line 3 is not '<sha256>  <file>'"),
    "sums symlinked": (_linked_sums, SUMS_FILE, "is a symbolic link"),
    "no sums": (lambda b: (b / SUMS_FILE).unlink(), None, "not a bundle (SHA256SUMS is missing)"),
    "extra file": (_extra_entry, None, "unexpected entries in the bundle (notes.txt)"),
    "extra folder": (_sub_folder, None, "unexpected entries in the bundle (extra)"),
    "onnx is a folder": (_onnx_folder, ONNX_FILE, "not a regular file"),
    "manifest is a named pipe": (_fifo_manifest, MANIFEST_FILE, "not a regular file"),
    "onnx missing": (lambda b: (b / ONNX_FILE).unlink(), ONNX_FILE, "missing from the bundle"),
    "onnx changed": (lambda b: (b / ONNX_FILE).write_bytes((b / ONNX_FILE).read_bytes()[:-10]), ONNX_FILE,
                     "checksum mismatch"),
}


@pytest.mark.parametrize("case", FOLDER_CASES)
def test_bundle_folder_holds_exactly_its_checked_files(bundle, case):
    tamper, named, problem = FOLDER_CASES[case]
    tamper(bundle)
    with pytest.raises(DataError, match=re.escape(f"{bundle if named is None else bundle / named}: {problem}")):
        load_bundle(bundle)


@pytest.mark.parametrize("rewrite", [str.upper, lambda sums: sums.replace("\n", "\r\n")], ids=["upper hex", "crlf"])
def test_checksum_list_written_by_other_tools_is_accepted(bundle, rewrite):
    (bundle / SUMS_FILE).write_text(rewrite((bundle / SUMS_FILE).read_text()).replace("ENSEMBLE.ONNX", ONNX_FILE)
                                    .replace("MANIFEST.JSON", MANIFEST_FILE), newline="")
    load_bundle(bundle)


def test_missing_bundle_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_bundle(tmp_path / "nowhere")


def test_export_replaces_the_bundle_and_cleans_up_a_killed_export(tmp_path):
    out_dir = tmp_path / "bundle"
    out_dir.mkdir()
    (out_dir / "from_the_old_version.txt").write_text("old")
    stale = tmp_path / ".bundle.staging-k1ll3d_0"  # what a killed export leaves: its staging folder
    stale.mkdir()
    (stale / ONNX_FILE).write_bytes(b"half")
    umask = os.umask(0o027)
    try:
        export_bundle(_summary(tmp_path), out_dir, {})
    finally:
        os.umask(umask)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle", "checkpoint"]
    assert sorted(path.name for path in out_dir.iterdir()) == sorted([*BUNDLE_FILES, SUMS_FILE])
    assert stat.S_IMODE(out_dir.stat().st_mode) == 0o750  # the umask's, not mkdtemp's 0700
    load_bundle(out_dir)


def test_failed_export_keeps_the_bundle_a_killed_one_renamed_aside(exported, tmp_path):
    aside = Path(shutil.copytree(exported, tmp_path / ".bundle.previous"))
    before = _snapshot(aside)
    with pytest.raises(DataError, match="decision_rule.fallback"):
        export_bundle(_summary(tmp_path, {**GOOD_RULE, "fallback": "guess"}), tmp_path / "bundle", {})
    assert _snapshot(tmp_path / "bundle") == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle", "checkpoint"]
