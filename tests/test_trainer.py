import numpy as np
import pytest
import torch

from ecgtune.data import holdout_split, make_synthetic, prepare_fold
from ecgtune.errors import ConfigError
from ecgtune.trainer import TrainConfig, train_family, training_loss

SMALL = dict(widths=(16, 32), kernel_sizes=(7, 3), hidden=(32,))


@pytest.fixture(scope="module")
def fold():
    beats = make_synthetic(1500, seed=2)
    train_rows, val_rows = holdout_split(beats.labels, 0.3, seed=0)
    return prepare_fold(beats, train_rows, val_rows)


def test_training_learns_and_reports_every_epoch(fold):
    reports = []
    model, result = train_family("plain_cnn", fold, SMALL, TrainConfig(epochs=4, lr=3e-3), on_epoch=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4]
    for key in ("abs_sum", "abs_sum_proba", "log_loss", "accuracy", "samples_per_s", "train_loss"):
        assert all(np.isfinite(r[key]) for r in reports), key
    majority = np.bincount(fold.val_labels).max() / len(fold.val_labels)
    assert result.kept_metrics["accuracy"] > majority + 0.1
    assert reports[-1]["train_loss"] < reports[0]["train_loss"]


def test_best_epoch_weights_and_probabilities_are_kept(fold):
    model, result = train_family("dilated_cnn", fold, dict(widths=(16, 16), stem_width=8, hidden=(16,)),
                                 TrainConfig(epochs=3))
    best = min(result.history, key=lambda r: (r["abs_sum"], r["log_loss"]))
    assert result.kept_epoch == best["epoch"]
    assert result.kept_val_probs.shape == (len(fold.val_labels), 4)
    np.testing.assert_allclose(result.kept_val_probs.sum(axis=1), 1.0, atol=1e-5)
    from ecgtune.trainer import predict_proba
    again = predict_proba(model, torch.as_tensor(fold.val_signals))
    np.testing.assert_allclose(again, result.kept_val_probs, atol=1e-5)


def test_keep_last_lets_the_validation_rows_choose_nothing(fold):
    """For out-of-fold predictions the last epoch is kept, whatever the validation rows say."""
    small = dict(widths=(16, 16), stem_width=8, hidden=(16,))
    model, result = train_family("dilated_cnn", fold, small, TrainConfig(epochs=3, keep="last"))
    assert result.kept_epoch == 3 and result.kept_metrics == result.history[-1]
    from ecgtune.trainer import predict_proba
    np.testing.assert_allclose(predict_proba(model, torch.as_tensor(fold.val_signals)), result.kept_val_probs,
                               atol=1e-5)


def test_same_seed_same_result(fold):
    config = TrainConfig(epochs=1, seed=3)
    _, first = train_family("plain_cnn", fold, SMALL, config)
    _, second = train_family("plain_cnn", fold, SMALL, config)
    np.testing.assert_array_equal(first.kept_val_probs, second.kept_val_probs)


@pytest.mark.parametrize("loss, schedule", [("l1", "cosine"), ("cross_entropy", "cosine"), ("l1", "onecycle")])
def test_losses_and_schedules_with_class_weights(fold, loss, schedule):
    weighted = prepare_fold(make_synthetic(800, seed=9), *holdout_split(make_synthetic(800, seed=9).labels, 0.3),
                            imbalance="class_weights")
    _, result = train_family("plain_cnn", weighted, SMALL,
                             TrainConfig(epochs=2, loss=loss, schedule=schedule, label_smoothing=0.1))
    assert len(result.history) == 2 and not result.diverged


def test_l1_loss_matches_the_write_up_definition():
    logits = torch.tensor([[2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    targets = torch.tensor([0, 1])
    eps = 0.1
    probs = logits.softmax(dim=1)
    smoothed = torch.tensor([[0.9, eps / 3, eps / 3, eps / 3], [eps / 3, 0.9, eps / 3, eps / 3]])
    expected = (probs - smoothed).abs().sum(dim=1).mean()
    assert torch.isclose(training_loss(logits, targets, 4, "l1", eps), expected)
    weights = torch.tensor([1.0, 3.0, 1.0, 1.0])
    per_row = (probs - smoothed).abs().sum(dim=1)
    assert torch.isclose(training_loss(logits, targets, 4, "l1", eps, weights), (per_row[0] + 3 * per_row[1]) / 4)


def test_a_diverging_run_stops_and_says_so(fold):
    _, result = train_family("plain_cnn", fold, SMALL, TrainConfig(epochs=3, lr=1e12, max_grad_norm=0))
    assert result.diverged
    assert len(result.history) < 3


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="valid: onecycle, cosine"):
        TrainConfig(schedule="step")
    with pytest.raises(ConfigError, match="valid: cross_entropy, l1"):
        TrainConfig(loss="mse")


@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_a_run_resumed_from_a_saved_state_matches_an_uninterrupted_one(fold, tmp_path, schedule):
    from ecgtune.models import create_model
    from ecgtune.trainer import Trainer

    config = TrainConfig(epochs=3, schedule=schedule)
    settings = dict(SMALL, dropout=0.3)
    torch.manual_seed(0)
    straight = Trainer(create_model("plain_cnn", **settings), fold, config).fit()

    torch.manual_seed(0)
    first = Trainer(create_model("plain_cnn", **settings), fold, config)
    first.run_epoch()
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed = Trainer(create_model("plain_cnn", **settings), fold, config)
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    result = resumed.fit()

    assert [r["abs_sum"] for r in result.history] == [r["abs_sum"] for r in straight.history]
    np.testing.assert_allclose([r["train_loss"] for r in result.history],
                               [r["train_loss"] for r in straight.history], rtol=1e-5)
    np.testing.assert_allclose(result.kept_val_probs, straight.kept_val_probs, atol=1e-5)


@pytest.mark.parametrize("rows", [3, 9, 40])
@pytest.mark.parametrize("schedule", ["onecycle", "cosine"])
def test_very_short_runs_schedule_without_error(rows, schedule):
    beats = make_synthetic(200, seed=1)
    fold = prepare_fold(beats, np.arange(rows), np.arange(150, 200))
    _, result = train_family("plain_cnn", fold, SMALL, TrainConfig(epochs=1, batch_size=8, schedule=schedule))
    assert len(result.history) == 1


def test_augmentation_never_touches_the_validation_rows(fold, monkeypatch):
    """Every augmented batch holds training rows only, and the validation signals stay as they were."""
    from dataclasses import replace

    import ecgtune.trainer as trainer_module
    from ecgtune.augment import Augmentation, augment

    marked = replace(fold, val_signals=np.full_like(fold.val_signals, -7.0))  # a value no training row has
    seen = []

    def recording(signals, augmentation, generator):
        seen.append(signals.detach().clone())
        return augment(signals, augmentation, generator)

    monkeypatch.setattr(trainer_module, "augment", recording)
    strong = Augmentation(amplitude=0.2, baseline=0.05, noise=0.02, shift=4, stretch=0.1, mixup=0.4)
    _, result = train_family("plain_cnn", marked, SMALL, TrainConfig(epochs=2, augmentation=strong))
    assert sum(len(batch) for batch in seen) == 2 * len(fold.train_labels)
    assert all((batch != -7.0).all() for batch in seen)
    assert (marked.val_signals == -7.0).all()
    assert np.isfinite(result.kept_metrics["log_loss"])


def test_augmentation_and_weight_averaging_round_trip_through_json(fold):
    import dataclasses
    import json

    from ecgtune.augment import Augmentation

    config = TrainConfig(epochs=1, ema_horizon=0.1, augmentation=Augmentation(noise=0.01, shift=2))
    again = TrainConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert again == config and again.augmentation.shift == 2


def test_a_fold_without_validation_rows_trains_on_every_row_with_averaged_weights(fold):
    """A refit: no rows held out, the last epoch kept, the moving average of the weights shipped."""
    from dataclasses import replace

    every_row = replace(fold, val_signals=fold.val_signals[:0], val_labels=fold.val_labels[:0])
    reports = []
    model, result = train_family("plain_cnn", every_row, SMALL, TrainConfig(epochs=6, keep="last", ema_horizon=0.1),
                                 on_epoch=reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3, 4, 5, 6] and "abs_sum" not in reports[0]
    assert result.kept_epoch == 6 and result.kept_val_probs.shape == (0, 4)
    from ecgtune.trainer import predict_proba
    probs = predict_proba(model, torch.as_tensor(fold.val_signals))
    accuracy = (probs.argmax(axis=1) == fold.val_labels).mean()
    assert accuracy > np.bincount(fold.val_labels).max() / len(fold.val_labels)


def test_the_pace_is_the_fastest_timed_epoch_so_a_burst_of_load_does_not_halve_it(monkeypatch):
    from ecgtune import trainer

    epochs = iter([{"samples_per_s": 50.0}, {"samples_per_s": 400.0}, {"samples_per_s": 1000.0},
                   {"samples_per_s": 300.0}])  # a warm-up, then a burst of other work slows the 1st and 3rd
    monkeypatch.setattr(trainer.Trainer, "run_epoch", lambda self: next(epochs))
    assert trainer.training_pace("plain_cnn", {}, 205, 4, repeats=3) == 1 / 1000.0
    assert next(epochs, None) is None, "the warm-up epoch is not timed, and every repeat is"


class TenSecondEpochs:
    """A fake `time.perf_counter` whose every epoch (train, then validate) takes ten seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 5.0
        return self.now


@pytest.mark.parametrize("allowance, planned, replanned", [
    (60.0, 4, 6),    # quicker than planned: the time left buys 3 more epochs
    (1000.0, 4, 8),  # at most twice the plan, whatever a first pace says
    (45.0, 8, 4),    # slower: it ends in time, its schedule annealed over one more epoch
    (25.0, 8, 3),    # already past its time: it stops now
])
def test_a_timed_run_re_plans_its_epochs_at_its_own_pace(fold, monkeypatch, allowance, planned, replanned):
    """Long trials planned from a pace timed beforehand ended a sixth early, or were cut by the search's
    deadline before their schedule annealed: after 3 epochs the run fills its allowance instead."""
    from ecgtune import trainer
    from ecgtune.models import create_model

    monkeypatch.setattr(trainer.time, "perf_counter", TenSecondEpochs())
    config = TrainConfig(epochs=planned, time_allowance_s=allowance)
    run = trainer.Trainer(create_model("plain_cnn", **SMALL), fold, config)
    result = run.fit()
    assert len(result.history) == replanned and result.config["epochs"] == replanned
    assert result.seconds <= max(allowance, 30.0)
    untimed = trainer.Trainer(create_model("plain_cnn", **SMALL), fold, TrainConfig(epochs=replanned))
    assert len(untimed.fit().history) == replanned, "without an allowance the plan stands"
    if replanned > trainer.REPLAN_AFTER_EPOCH:
        assert run.scheduler.get_last_lr() == pytest.approx(untimed.scheduler.get_last_lr()), "annealed to its end"


def test_a_re_planned_run_resumes_with_its_new_schedule(fold, tmp_path, monkeypatch):
    from ecgtune import trainer
    from ecgtune.models import create_model

    config = TrainConfig(epochs=4, time_allowance_s=60.0)
    monkeypatch.setattr(trainer.time, "perf_counter", TenSecondEpochs())
    torch.manual_seed(0)
    straight = trainer.Trainer(create_model("plain_cnn", **SMALL), fold, config).fit()

    monkeypatch.setattr(trainer.time, "perf_counter", TenSecondEpochs())
    torch.manual_seed(0)
    first = trainer.Trainer(create_model("plain_cnn", **SMALL), fold, config)
    for _ in range(4):
        first.run_epoch()
    torch.save(first.state_dict(), tmp_path / "state.pt")
    resumed = trainer.Trainer(create_model("plain_cnn", **SMALL), fold, config)  # the config as sampled
    resumed.load_state_dict(torch.load(tmp_path / "state.pt", weights_only=True))
    result = resumed.fit()
    assert len(result.history) == len(straight.history) == 6
    np.testing.assert_allclose([r["train_loss"] for r in result.history],
                               [r["train_loss"] for r in straight.history], rtol=1e-5)
    np.testing.assert_allclose(result.kept_val_probs, straight.kept_val_probs, atol=1e-5)
