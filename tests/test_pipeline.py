"""The time budget covers the whole pipeline: how it is shared between the stages, and recorded."""

import json
import time

import pytest

from ecgtune import pipeline
from ecgtune.errors import EcgtuneError
from ecgtune.experiment import Plan


def _plan(refit=True, budget_s=480.0):
    return Plan(families=["plain_cnn"], storage="/tmp", data=None, rows=100, val_fraction=0.2, seed=0,
                num_samples=10, time_budget_s=budget_s, searcher="optuna", scheduler="asha", grace_period_s=None,
                reduction_factor=3, min_epochs=1, max_epochs=2, refit=refit)


class FakeClock:
    """time.monotonic under the test's control."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time, "monotonic", clock)
    return clock


def test_the_search_gets_what_the_refit_and_the_finishing_stages_leave(fake_time):
    clock = pipeline.Clock(480.0)
    fake_time.now += 30.0  # data, Ray and the plan took 30 s
    finishing = max(pipeline.FINISH_MIN_S, pipeline.FINISH_SHARE * 480.0)
    assert pipeline.search_time(_plan(refit=True), clock) == pytest.approx(480 - 30 - finishing - 0.15 * 480)
    assert pipeline.search_time(_plan(refit=False), clock) == pytest.approx(480 - 30 - finishing)
    assert pipeline.search_time(_plan(budget_s=None), pipeline.Clock(None)) is None


def test_the_refit_gets_what_the_search_left_but_the_finishing_reserve(fake_time):
    clock = pipeline.Clock(480.0)
    fake_time.now += 400.0
    assert pipeline._refit_seconds(clock) == pytest.approx(80.0 - 24.0)
    fake_time.now += 100.0  # the search overran: nothing left for the refit, never a negative time
    assert pipeline._refit_seconds(clock) == 0.0


def test_a_budget_too_small_to_search_is_refused_in_one_line(fake_time):
    clock = pipeline.Clock(20.0)
    with pytest.raises(EcgtuneError, match="leaves no time to search"):
        pipeline.search_time(_plan(budget_s=20.0), clock)


def test_stages_are_timed_and_saved(fake_time, tmp_path):
    clock = pipeline.Clock(480.0)
    with clock.stage("search"):
        fake_time.now += 300.0
    with clock.stage("export"):
        fake_time.now += 12.5
    with pytest.raises(RuntimeError), clock.stage("report"):
        fake_time.now += 1.0
        raise RuntimeError("a failing stage is timed too")
    pipeline.save_timings(tmp_path, clock)
    saved = json.loads((tmp_path / pipeline.TIMINGS_FILE).read_text())
    assert saved == {"budget_s": 480.0, "total_s": 313.5, "stages": {"search": 300.0, "export": 12.5, "report": 1.0}}
