"""The Python API runs the commands' code: the same checks, the same pipeline, the same predictions."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import competition_csv

import ecgtune
from ecgtune.data import make_synthetic
from ecgtune.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


def _frame(beats, with_labels=True) -> pd.DataFrame:
    columns = {"id": beats.ids, "heartbeat_signals": [",".join(map(repr, row.tolist())) for row in beats.signals]}
    if with_labels:
        columns["label"] = beats.labels.astype(float)  # the competition writes labels as 0.0, 1.0, ...
    return pd.DataFrame(columns)


def test_a_dataframe_reads_as_its_file_does(tmp_path):
    beats = make_synthetic(40, seed=3)
    from_frame = ecgtune.read_heartbeats(_frame(beats), require_labels=True)
    from_file = ecgtune.read_heartbeats(competition_csv(tmp_path / "b.csv", beats.signals, beats.labels, beats.ids))
    np.testing.assert_array_equal(from_frame.signals, from_file.signals)
    np.testing.assert_array_equal(from_frame.labels, from_file.labels)
    np.testing.assert_array_equal(from_frame.ids, from_file.ids)


def test_a_bad_dataframe_is_refused_naming_the_row():
    frame = _frame(make_synthetic(5, seed=0))
    frame.loc[3, "heartbeat_signals"] = "0.1,nan," + frame.loc[3, "heartbeat_signals"].split(",", 2)[2]
    with pytest.raises(DataError, match=r"DataFrame: .*(row|line) .*NaN"):
        ecgtune.read_heartbeats(frame)
    with pytest.raises(DataError, match="DataFrame: no 'label' column"):
        ecgtune.read_heartbeats(_frame(make_synthetic(5, seed=0), with_labels=False), require_labels=True)


def test_unknown_search_options_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="unknown option.*num_sample.*valid: .*num_samples"):
        ecgtune.search(families=["plain_cnn"], runs_dir=tmp_path, num_sample=3)
    with pytest.raises(ConfigError, match="num-samples.*positive integer"):
        ecgtune.search(families=["plain_cnn"], runs_dir=tmp_path, num_samples=0)
    assert not any(tmp_path.iterdir())


def test_search_from_a_dataframe_predicts_what_the_command_writes(tmp_path):
    beats, test_beats = make_synthetic(600, seed=0), make_synthetic(50, seed=1, first_id=600, with_labels=False)
    _frame(beats).to_pickle(tmp_path / "train.pkl")  # the subprocess's own DataFrame
    script = textwrap.dedent(f"""
        import json, pandas as pd, ecgtune
        experiment = ecgtune.search(pd.read_pickle({str(tmp_path / 'train.pkl')!r}), families=["plain_cnn"],
                                    smoke=True, name="api", runs_dir={str(tmp_path)!r}, num_samples=2,
                                    time_budget_minutes=None)
        print(json.dumps({{"path": str(experiment.path), "bundle": str(experiment.bundle_path),
                          "report": str(experiment.report_path), "trials": len(experiment.leaderboard),
                          "columns": list(experiment.leaderboard.columns), "scores": experiment.scores}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    described = json.loads(result.stdout.strip().splitlines()[-1])
    assert "not refit: its networks ship as the search trained them" in result.stdout, "a smoke run skips the refit"
    run_dir = tmp_path / "api"
    assert described["path"] == str(run_dir) and (run_dir / "data.parquet").is_file(), "the data kept for --resume"
    assert described["trials"] >= 1 and described["columns"][:3] == ["rank", "family", "trial_id"]
    assert described["report"] == str(run_dir / "report.html")
    assert described["scores"] == json.loads((run_dir / "ensemble.json").read_text())["scores"]

    test_file = competition_csv(tmp_path / "test.csv", test_beats.signals, ids=test_beats.ids)
    submitted = subprocess.run([sys.executable, "-m", "ecgtune", "predict", "--bundle", described["bundle"], "--data",
                                test_file, "--out", tmp_path / "submit.csv"], capture_output=True, text=True, cwd=ROOT)
    assert submitted.returncode == 0, submitted.stderr
    written = pd.read_csv(tmp_path / "submit.csv")
    bundle = ecgtune.load_bundle(described["bundle"])
    for signals in (test_beats.signals, _frame(test_beats, with_labels=False)):
        np.testing.assert_allclose(bundle.predict(signals), written.iloc[:, 1:].to_numpy(), atol=1e-6)
    assert bundle.predict_proba(test_beats.signals).shape == (50, 4)
    with pytest.raises(DataError, match="204 samples per beat; the bundle expects 205"):
        bundle.predict(test_beats.signals[:, :204])
    kept = (run_dir / "data.parquet").read_bytes()
    with pytest.raises(ecgtune.EcgtuneError, match="already holds an experiment; continue it with resume=True"):
        ecgtune.search(_frame(beats), name="api", runs_dir=tmp_path)
    assert (run_dir / "data.parquet").read_bytes() == kept, "the earlier experiment's data untouched"
