"""What ships is never worse than what was found, and no clock decides it."""

import json
import time

import numpy as np
import pytest

from ecgtune.ensemble import EnsembleSummary, Member, build_ensemble
from ecgtune.metrics import abs_sum, argmax_decisions, log_loss


def _members(n_members, n_rows, seed):
    """Trials of varied quality, best first as the library orders them, each with its model description."""
    rng = np.random.default_rng(seed)
    labels = rng.choice(4, size=n_rows, p=[0.64, 0.04, 0.14, 0.18])
    members = []
    for index in range(n_members):
        logits = np.eye(4)[labels] * rng.uniform(1.0, 3.0) + rng.normal(0, 1.0 + 0.2 * index, (n_rows, 4))
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        width = int(rng.choice([16, 32, 64]))
        members.append(Member(f"dilated_cnn_{index}", "dilated_cnn", (), abs_sum(argmax_decisions(probs), labels),
                              log_loss(probs, labels), probs,
                              {"family": "dilated_cnn", "model_config": {"stem_width": width}, "n_classes": 4,
                               "signal_length": 205}))
    members.sort(key=lambda m: (m.val_abs_sum, m.val_log_loss, m.trial))
    return members, labels


@pytest.mark.parametrize("n_members, n_rows", [(3, 40), (4, 100), (12, 2000)])
@pytest.mark.parametrize("seed", range(3))
def test_what_ships_is_never_worse_than_the_best_trial(n_members, n_rows, seed):
    members, labels = _members(n_members, n_rows, seed)
    summary, probs = build_ensemble(members, labels, seed=seed)
    best_trial = members[0].val_abs_sum
    assert summary.scores["ensemble_learned_rule"] <= summary.scores["best_single_learned_rule"] <= best_trial
    assert summary.trajectory[0]["member"] == 0, "selection starts from the best trial"
    assert summary.scores["best_single_argmax"] == best_trial
    assert np.isclose(sum(m.weight for m in summary.members), 1.0)
    assert EnsembleSummary.from_dict(json.loads(json.dumps(summary.to_dict()))).to_dict() == summary.to_dict()
    assert probs.shape == (n_rows, 4)


def test_a_cost_limit_says_what_it_costs():
    members, labels = _members(6, 1500, seed=3)
    costs = {m.trial: (10.0 if index == 0 else 1.0) for index, m in enumerate(members)}
    summary, _ = build_ensemble(members, labels, cost_limit=3.0, member_cost=lambda m: costs[m.trial])
    assert members[0].trial not in [m.trial for m in summary.members]
    assert summary.cost <= 3.0 and summary.cost_limit == 3.0
    unlimited = summary.scores["unlimited_ensemble_learned_rule"]
    assert unlimited <= summary.scores["best_single_learned_rule"]
    free, _ = build_ensemble(members, labels)
    assert unlimited == pytest.approx(free.scores["ensemble_learned_rule"])
    assert "unlimited_ensemble_learned_rule" not in free.scores


def test_the_same_experiment_gives_the_same_ensemble_on_a_loaded_machine(tmp_path, monkeypatch):
    """The prediction budget is converted with the calibration saved in the experiment; a clock that
    runs ten times slower (a busy machine) changes nothing."""
    from ecgtune import experiment

    members, labels = _members(8, 1500, seed=4)
    (tmp_path / experiment.PLAN_FILE).write_text(json.dumps({"plan": {}, "data_fingerprint": {}}))
    saved = experiment.calibration(tmp_path)["seconds_per_mac"]
    options = experiment.EnsembleOptions(predict_budget=saved * 10_000 * 30e6)  # room for two or three networks
    idle, _ = experiment._build(members, labels, options, experiment.calibration(tmp_path)["seconds_per_mac"])
    real_clock = time.perf_counter
    monkeypatch.setattr(time, "perf_counter", lambda: real_clock() * 10.0)
    busy, _ = experiment._build(members, labels, options, experiment.calibration(tmp_path)["seconds_per_mac"])
    assert experiment.calibration(tmp_path)["seconds_per_mac"] == saved
    assert idle.to_dict() == busy.to_dict()
    assert idle.predict_seconds <= options.predict_budget
    assert len(idle.members) >= 1
