"""The checkpoint format: what the writer writes reads back whole, and every reader reads the same
record from it (no Ray needed)."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from ecgtune.checkpoint import (
    CONFIG_FILE,
    PROBS_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    load_network,
    read_checkpoint,
    write_checkpoint,
)
from ecgtune.data import holdout_split, make_synthetic, prepare_fold
from ecgtune.errors import EcgtuneError
from ecgtune.models import create_model
from ecgtune.trainer import TrainConfig, Trainer, predict_proba

SMALL = {"widths": [16, 32], "kernel_sizes": [7, 3], "hidden": [32]}
TRAINING = TrainConfig(epochs=4, lr=1e-2, batch_size=32)  # learns more than the class prior in a second
SAMPLED = {"family": "plain_cnn", "train": {"lr": 1e-2, "epochs": 4, "batch_size": 32}, "data": {"imbalance": "none"}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A trainer after its epochs and its checkpoint, where Ray would keep it in an experiment folder."""
    beats = make_synthetic(600, seed=2)
    train_rows, val_rows = holdout_split(beats.labels, 0.3, seed=0)
    fold = prepare_fold(beats, train_rows, val_rows)
    torch.manual_seed(0)
    trainer = Trainer(create_model("plain_cnn", **SMALL), fold, TRAINING)
    trainer.fit()
    folder = tmp_path_factory.mktemp("experiment") / "plain_cnn_a" / "checkpoint_000003"
    folder.mkdir(parents=True)
    write_checkpoint(folder, trainer, "plain_cnn", SMALL, "none", SAMPLED)
    return trainer, folder


def test_a_checkpoint_reads_back_as_it_was_written(written):
    trainer, folder = written
    result = trainer.result()
    checkpoint = read_checkpoint(folder)
    assert checkpoint.folder == folder
    assert (checkpoint.family, checkpoint.model_config, checkpoint.imbalance) == ("plain_cnn", SMALL, "none")
    assert (checkpoint.n_classes, checkpoint.signal_length) == (4, 205)
    assert checkpoint.train_config == result.config and checkpoint.sampled == SAMPLED
    assert checkpoint.kept_epoch == result.kept_epoch >= 1 and checkpoint.kept_metrics == result.kept_metrics
    assert checkpoint.epochs_trained == TRAINING.epochs and checkpoint.training_rows == len(trainer.fold.train_labels)
    assert checkpoint.seconds == trainer.elapsed > 0
    np.testing.assert_array_equal(checkpoint.val_probs, result.kept_val_probs)

    network = load_network(checkpoint)
    assert not network.training
    weights = network.state_dict()
    assert weights.keys() == result.kept_state.keys()
    assert all(torch.equal(weights[name], result.kept_state[name]) for name in weights)
    np.testing.assert_allclose(predict_proba(network, torch.as_tensor(trainer.fold.val_signals)),
                               checkpoint.val_probs, atol=1e-5)

    resumed = Trainer(create_model("plain_cnn", **SMALL), trainer.fold, TRAINING)
    resumed.load_state_dict(torch.load(folder / STATE_FILE, weights_only=True))
    assert resumed.epoch == TRAINING.epochs and resumed.kept_epoch == result.kept_epoch



def test_a_checkpoint_written_before_the_kept_names_still_reads_and_resumes(written, tmp_path):
    """Experiments written before "best_*" became "kept_*" (it also named the last epoch of keep="last")."""
    trainer, folder = written
    old = tmp_path / "checkpoint_000003"
    shutil.copytree(folder, old)
    described = json.loads((old / CONFIG_FILE).read_text())
    described["best_epoch"], described["best_metrics"] = described.pop("kept_epoch"), described.pop("kept_metrics")
    (old / CONFIG_FILE).write_text(json.dumps(described))
    saved = torch.load(old / STATE_FILE, weights_only=True)
    state = {key.replace("kept_", "best_"): value for key, value in saved.items()}

    checkpoint = read_checkpoint(old)
    assert (checkpoint.kept_epoch, checkpoint.kept_metrics) == (read_checkpoint(folder).kept_epoch,
                                                                read_checkpoint(folder).kept_metrics)
    resumed = Trainer(create_model("plain_cnn", **SMALL), trainer.fold, TRAINING)
    resumed.load_state_dict(state)
    assert resumed.kept_epoch == trainer.kept_epoch and resumed.kept_key == trainer.kept_key

def test_every_reader_reads_the_writers_record(written):
    """The search layer finds the checkpoint; the ensemble library and the export read what the
    checkpoint module reads."""
    from ecgtune.ensemble import load_library
    from ecgtune.export import load_member
    from ecgtune.raytune.tune_layout import latest_checkpoints

    trainer, folder = written
    checkpoint = read_checkpoint(folder)
    experiment_dir = folder.parent.parent
    assert latest_checkpoints(experiment_dir) == {"plain_cnn_a": folder}

    [member] = load_library(experiment_dir, trainer.fold.val_labels)
    assert (member.trial, member.family, member.checkpoints) == ("plain_cnn_a", "plain_cnn", (folder,))
    assert member.description == checkpoint.description()
    assert (member.val_abs_sum, member.val_log_loss) == (checkpoint.kept_metrics["abs_sum"],
                                                         checkpoint.kept_metrics["log_loss"])
    np.testing.assert_array_equal(member.val_probs, checkpoint.val_probs)

    network, exported = load_member(folder)
    assert exported == checkpoint
    np.testing.assert_array_equal(exported.val_probs, checkpoint.val_probs)
    probe = torch.rand(8, checkpoint.signal_length)
    with torch.no_grad():
        torch.testing.assert_close(network(probe), load_network(checkpoint)(probe))


def _damaged_copy(folder, tmp_path, name, damage):
    copy = tmp_path / "trial" / folder.name
    shutil.copytree(folder, copy)
    path = copy / name
    path.write_bytes(damage(path.read_bytes()))
    return copy


@pytest.mark.parametrize("name, damage, problem", [
    (CONFIG_FILE, lambda content: b"", "unreadable checkpoint"),
    (CONFIG_FILE, lambda content: content[:len(content) // 2], "unreadable checkpoint"),
    (CONFIG_FILE, lambda content: json.dumps({**json.loads(content), "sampled": None}).encode(),
     "sampled is missing or not a dict"),
    (CONFIG_FILE, lambda content: json.dumps({**json.loads(content), "n_classes": 3}).encode(),
     "does not hold rows of 3 class probabilities"),
    (PROBS_FILE, lambda content: content[:100], "unreadable checkpoint"),
])
def test_a_damaged_checkpoint_is_refused_in_one_error_naming_its_folder(written, tmp_path, name, damage, problem):
    _, folder = written
    copy = _damaged_copy(folder, tmp_path, name, damage)
    with pytest.raises(EcgtuneError, match=problem) as refused:
        read_checkpoint(copy)
    assert str(refused.value).startswith(f"{copy}: ")


def test_weights_cut_short_are_refused_naming_the_folder(written, tmp_path):
    _, folder = written
    copy = _damaged_copy(folder, tmp_path, WEIGHTS_FILE, lambda content: content[:len(content) // 2])
    checkpoint = read_checkpoint(copy)
    with pytest.raises(EcgtuneError, match=f"^{copy}: unreadable checkpoint"):
        load_network(checkpoint)


def test_reading_checkpoints_and_ensembles_imports_neither_torch_nor_ray():
    code = ("import sys, ecgtune.checkpoint, ecgtune.ensemble; "
            "print(sorted(name for name in ('torch', 'ray') if name in sys.modules))")
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert imported.strip() == "[]"
