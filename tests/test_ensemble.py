import numpy as np
import pytest

from ecgtune.ensemble import (
    DecisionRule,
    EnsembleSelection,
    argmax_rule,
    cross_fitted_abs_sum,
    fit_decision_rule,
    honest_decision_rule,
)
from ecgtune.errors import ConfigError, EcgtuneError
from ecgtune.metrics import abs_sum, argmax_decisions, threshold_decisions


def _library(n_members=8, n_rows=600, n_classes=4, seed=0):
    """Noisy members around the truth: some better, some worse, each with its own errors."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(n_classes, size=n_rows, p=[0.64, 0.04, 0.14, 0.18])
    logits_true = np.eye(n_classes)[labels] * 2.5
    members = []
    for member in range(n_members):
        noise = rng.normal(0, 1.0 + 0.25 * member, size=(n_rows, n_classes))
        logits = logits_true + noise
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        members.append(probs / probs.sum(axis=1, keepdims=True))
    return np.stack(members), labels


def _single_scores(members, labels):
    return [abs_sum(argmax_decisions(m), labels) for m in members]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("bagging_rounds", [0, 5])
def test_never_worse_than_the_best_single_member(seed, bagging_rounds):
    members, labels = _library(seed=seed)
    selector = EnsembleSelection(size=15, bagging_rounds=bagging_rounds, random_state=seed).fit(members, labels)
    ensemble = abs_sum(argmax_decisions(selector.predict_proba(members)), labels)
    if bagging_rounds == 0:
        assert ensemble <= min(_single_scores(members, labels))
    assert selector.weights_.sum() == pytest.approx(1.0) and (selector.weights_ >= 0).all()


def test_independent_errors_average_out():
    members, labels = _library(n_members=6, seed=3)
    selector = EnsembleSelection(size=20).fit(members, labels)
    ensemble = abs_sum(argmax_decisions(selector.predict_proba(members)), labels)
    assert ensemble < min(_single_scores(members, labels))
    assert (selector.weights_ > 0).sum() >= 2


def test_a_member_that_helps_only_by_noise_is_not_kept():
    """Two near-copies of the best member: blending them changes a handful of rows, which the
    bootstrap cannot tell from luck, so the ensemble stays the best member alone."""
    members, labels = _library(n_members=1, n_rows=2000, seed=11)
    rng = np.random.default_rng(0)
    twin = np.clip(members[0] + rng.normal(0, 0.02, members[0].shape), 1e-6, None)
    library = np.stack([members[0], twin / twin.sum(axis=1, keepdims=True)])
    selector = EnsembleSelection(size=10).fit(library, labels)
    assert selector.kept_steps_ == 1 and (selector.weights_ > 0).sum() == 1
    lenient = EnsembleSelection(size=10, min_confidence=0.0).fit(library, labels)
    assert lenient.kept_steps_ > 1


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_max_members_caps_the_distinct_members(cap):
    members, labels = _library(n_members=6, seed=3)
    free = EnsembleSelection(size=20).fit(members, labels)
    capped = EnsembleSelection(size=20, max_members=cap).fit(members, labels)
    assert (capped.weights_ > 0).sum() <= cap < (free.weights_ > 0).sum()
    capped_score = abs_sum(argmax_decisions(capped.predict_proba(members)), labels)
    assert capped_score <= min(_single_scores(members, labels))


def test_a_cost_limit_bounds_the_distinct_members_costs():
    members, labels = _library(n_members=6, seed=3)
    costs = np.array([3.0, 1.0, 2.0, 1.5, 1.0, 2.5])
    asked = []

    def cost_of(member):
        asked.append(member)
        return costs[member]

    free = EnsembleSelection(size=20).fit(members, labels)
    assert costs[free.weights_ > 0].sum() > 3.0
    limited = EnsembleSelection(size=20, cost_limit=3.0).fit(members, labels, member_cost=cost_of)
    assert costs[limited.weights_ > 0].sum() <= 3.0
    assert len(asked) == len(set(asked)), "each member's cost is asked once"
    limited_score = abs_sum(argmax_decisions(limited.predict_proba(members)), labels)
    assert limited_score <= min(_single_scores(members[costs <= 3.0], labels))


def test_the_best_member_is_passed_over_when_it_costs_too_much():
    members, labels = _library(n_members=5, seed=8)
    best = int(np.argmin(_single_scores(members, labels)))
    costs = np.where(np.arange(5) == best, 10.0, 1.0)
    selector = EnsembleSelection(size=10, cost_limit=4.0).fit(members, labels, member_cost=costs.__getitem__)
    assert selector.weights_[best] == 0
    assert selector.trajectory_[0]["member"] != best


def test_when_nothing_fits_the_cost_limit_the_cheapest_member_is_the_ensemble():
    members, labels = _library(n_members=4, seed=9)
    selector = EnsembleSelection(cost_limit=0.5).fit(members, labels, member_cost=lambda member: 5.0 - member)
    np.testing.assert_array_equal(selector.weights_, [0, 0, 0, 1])


@pytest.mark.parametrize("limits", [{"max_members": 2}, {"cost_limit": 2.0}])
def test_bagging_rounds_together_stay_within_the_limits(limits):
    members, labels = _library(n_members=8, seed=10)
    selector = EnsembleSelection(size=10, bagging_rounds=6, **limits).fit(members, labels, member_cost=lambda m: 1.0)
    assert (selector.weights_ > 0).sum() <= 2


def test_deterministic_for_a_seed():
    members, labels = _library(seed=4)
    first = EnsembleSelection(size=10, bagging_rounds=3, random_state=7).fit(members, labels)
    second = EnsembleSelection(size=10, bagging_rounds=3, random_state=7).fit(members, labels)
    np.testing.assert_array_equal(first.weights_, second.weights_)
    assert first.trajectory_ == second.trajectory_


@pytest.mark.parametrize("seed", [5, 6])
def test_selection_starts_from_the_best_member_and_records_every_step(seed):
    members, labels = _library(seed=seed)
    selector = EnsembleSelection(size=12).fit(members, labels)
    assert len(selector.trajectory_) == 12
    assert {"member", "abs_sum", "log_loss", "kept"} <= set(selector.trajectory_[0])
    best_single = int(np.argmin(_single_scores(members, labels)))
    assert selector.trajectory_[0]["member"] == selector.start_ == best_single
    assert sum(step["kept"] for step in selector.trajectory_) <= selector.kept_steps_


def test_a_member_with_nan_is_refused():
    members, labels = _library(seed=6)
    members[2, 10, 1] = np.nan
    with pytest.raises(ConfigError, match="member 2 has NaN"):
        EnsembleSelection().fit(members, labels)


def test_learned_rule_is_no_worse_than_the_fixed_rules():
    members, labels = _library(seed=7)
    probs = members.mean(axis=0)  # an average of noisy members: under-confident
    rule = fit_decision_rule(probs, labels)
    learned = abs_sum(rule.decide(probs), labels)
    assert learned <= abs_sum(threshold_decisions(probs), labels)
    assert learned <= abs_sum(argmax_decisions(probs), labels)
    assert rule.fallback in ("zeros", "proba", "argmax") and len(rule.thresholds) == 4


def test_decision_rule_corrects_miscalibration():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, size=2000)
    # class 1 is under-confident: its probability sits around 0.4 when true
    p1 = np.where(labels == 1, rng.uniform(0.3, 0.5, 2000), rng.uniform(0.0, 0.25, 2000))
    probs = np.stack([1 - p1, p1], axis=1)
    rule = fit_decision_rule(probs, labels)
    assert rule.thresholds[1] <= 0.3
    assert abs_sum(rule.decide(probs), labels) < 0.2 * abs_sum(DecisionRule(np.full(2, 0.5)).decide(probs), labels)


def test_cross_fitted_estimate_is_no_better_than_in_sample():
    members, labels = _library(seed=9, n_rows=800)
    probs = members.mean(axis=0)
    in_sample = abs_sum(fit_decision_rule(probs, labels).decide(probs), labels)
    honest = cross_fitted_abs_sum(probs, labels, n_folds=4)
    assert honest >= in_sample


def test_learned_thresholds_ship_only_where_they_beat_the_argmax_cross_fitted():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 2, size=2000)
    # calibrated and confident: any threshold off 0.5 only fits these rows' noise
    p1 = np.clip(np.where(labels == 1, rng.normal(0.8, 0.2, 2000), rng.normal(0.2, 0.2, 2000)), 0.0, 1.0)
    calibrated = np.stack([1 - p1, p1], axis=1)
    rule, cross_fitted = honest_decision_rule(calibrated, labels)
    in_sample = abs_sum(fit_decision_rule(calibrated, labels).decide(calibrated), labels)
    argmax = abs_sum(argmax_decisions(calibrated), labels)
    assert in_sample < argmax < cross_fitted, "fitted on its own rows the learned rule looks better than it is"
    assert rule.is_argmax
    np.testing.assert_array_equal(rule.decide(calibrated), argmax_decisions(calibrated))
    # under-confident class 1: thresholds learned on other rows still win, so they ship
    p1 = np.where(labels == 1, rng.uniform(0.3, 0.5, 2000), rng.uniform(0.0, 0.25, 2000))
    miscalibrated = np.stack([1 - p1, p1], axis=1)
    rule, cross_fitted = honest_decision_rule(miscalibrated, labels)
    assert not rule.is_argmax and cross_fitted < abs_sum(argmax_decisions(miscalibrated), labels)
    assert argmax_rule(4).to_dict() == {"thresholds": [1.0] * 4, "fallback": "argmax"}


def test_fallbacks():
    probs = np.array([[0.4, 0.35, 0.15, 0.1], [0.8, 0.1, 0.05, 0.05]])
    np.testing.assert_array_equal(DecisionRule(np.full(4, 0.5), "zeros").decide(probs)[0], [0, 0, 0, 0])
    np.testing.assert_allclose(DecisionRule(np.full(4, 0.5), "proba").decide(probs)[0], probs[0])
    np.testing.assert_array_equal(DecisionRule(np.full(4, 0.5), "argmax").decide(probs)[0], [1, 0, 0, 0])
    np.testing.assert_array_equal(DecisionRule(np.full(4, 0.5), "zeros").decide(probs)[1], [1, 0, 0, 0])


def _write_checkpoint(folder, family, abs_sum_value, probs, log_loss_value=0.1):
    """The files of a search checkpoint that the library reads: its description and validation probabilities."""
    import json

    from ecgtune.checkpoint import CONFIG_FILE, PROBS_FILE, Checkpoint

    checkpoint = Checkpoint(folder, family, model_config={}, n_classes=probs.shape[1], signal_length=205,
                            train_config={}, imbalance="none", sampled={"family": family}, kept_epoch=1,
                            kept_metrics={"abs_sum": abs_sum_value, "log_loss": log_loss_value}, epochs_trained=1,
                            training_rows=100, seconds=1.0, val_probs=probs)
    folder.mkdir(parents=True)
    (folder / CONFIG_FILE).write_text(json.dumps(checkpoint.description()))
    np.save(folder / PROBS_FILE, probs)


LIBRARY_LABELS = np.arange(50) % 4  # always deciding class 0 scores 2 x 37 = 74


def test_library_keeps_the_top_k_and_the_best_of_every_family(tmp_path):
    from ecgtune.ensemble import load_library

    probs = np.full((50, 4), 0.25)
    _write_checkpoint(tmp_path / "plain_cnn_a" / "checkpoint_000000", "plain_cnn", 30.0, probs)
    _write_checkpoint(tmp_path / "plain_cnn_a" / "checkpoint_000003", "plain_cnn", 10.0, probs)
    _write_checkpoint(tmp_path / "plain_cnn_b" / "checkpoint_000001", "plain_cnn", 12.0, probs)
    _write_checkpoint(tmp_path / "resnet1d_c" / "checkpoint_000001", "resnet1d", 50.0, probs)
    _write_checkpoint(tmp_path / "resnet1d_d" / "checkpoint_000001", "resnet1d", 40.0, probs)
    library = load_library(tmp_path, LIBRARY_LABELS, top_k=1)
    assert [(m.trial, m.val_abs_sum) for m in library] == [("plain_cnn_a", 10.0), ("resnet1d_d", 40.0)]
    with pytest.raises(EcgtuneError, match="do not match the 7 rows they should cover"):
        load_library(tmp_path, np.arange(7) % 4)


def test_a_truncated_checkpoint_is_left_out_with_a_warning_naming_it(tmp_path):
    from ecgtune.ensemble import load_library

    probs = np.full((50, 4), 0.25)
    _write_checkpoint(tmp_path / "plain_cnn_a" / "checkpoint_000001", "plain_cnn", 10.0, probs)
    _write_checkpoint(tmp_path / "resnet1d_b" / "checkpoint_000001", "resnet1d", 12.0, probs)
    (tmp_path / "resnet1d_b" / "checkpoint_000001" / "config.json").write_text("")  # a full disk's leftovers
    with pytest.warns(UserWarning, match="resnet1d_b/checkpoint_000001: unreadable checkpoint"):
        library = load_library(tmp_path, LIBRARY_LABELS)
    assert [m.trial for m in library] == ["plain_cnn_a"]


def test_trials_no_better_than_the_class_prior_never_enter_the_library(tmp_path):
    from ecgtune.ensemble import load_library

    probs = np.full((50, 4), 0.25)
    _write_checkpoint(tmp_path / "plain_cnn_a" / "checkpoint_000001", "plain_cnn", 20.0, probs)
    _write_checkpoint(tmp_path / "plain_cnn_b" / "checkpoint_000001", "plain_cnn", 74.0, probs)  # majority class
    _write_checkpoint(tmp_path / "resnet1d_c" / "checkpoint_000001", "resnet1d", 30.0, probs, log_loss_value=1.5)
    with pytest.warns(UserWarning, match="2 trial"):
        library = load_library(tmp_path, LIBRARY_LABELS)
    assert [m.trial for m in library] == ["plain_cnn_a"]
    (tmp_path / "plain_cnn_a" / "checkpoint_000001" / "config.json").unlink()
    with pytest.raises(EcgtuneError, match="none of the 2 trials did better than always predicting the class prior"):
        load_library(tmp_path, LIBRARY_LABELS)


def test_fold_library_joins_each_configurations_out_of_fold_predictions(tmp_path):
    from ecgtune.ensemble import load_fold_library

    labels = np.array([0, 1, 2, 3, 0, 1])
    held_out = [np.array([0, 2, 4]), np.array([1, 3, 5])]
    truth = np.eye(4)[labels]
    for fold, rows in enumerate(held_out):
        _write_checkpoint(tmp_path / f"good_fold{fold}" / "checkpoint_000001", "resnet1d", 0.0, truth[rows])
        _write_checkpoint(tmp_path / f"flat_fold{fold}" / "checkpoint_000001", "plain_cnn", 0.0,
                          np.full((3, 4), 0.25))
    library = load_fold_library(tmp_path, ["flat", "good"], held_out, labels)
    assert [m.trial for m in library] == ["good", "flat"]
    np.testing.assert_array_equal(library[0].val_probs, truth)
    assert library[0].val_abs_sum == 0.0 and library[1].val_abs_sum > 0
    assert [path.parent.name for path in library[0].checkpoints] == ["good_fold0", "good_fold1"]
    with pytest.raises(EcgtuneError, match="missing_fold0: no checkpoint; that fold's training did not finish"):
        load_fold_library(tmp_path, ["good", "missing"], held_out, labels)
