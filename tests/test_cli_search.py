import csv
import subprocess
import sys

import pytest

from conftest import competition_csv
from ecgtune.cli import main, parse_families
from ecgtune.errors import ConfigError


def test_arch_all_and_lists():
    assert len(parse_families("all")) == 6
    assert parse_families("net1, resnet1d,dilated_cnn") == ["dilated_cnn", "resnet1d"]
    with pytest.raises(ConfigError, match="unknown model 'lenet'; valid: cnn_lstm"):
        parse_families("plain_cnn,lenet")


def test_search_smoke_writes_a_ranked_leaderboard(tmp_path, capsys):
    code = main(["search", "--arch", "plain_cnn,net1", "--smoke", "--rows", "600", "--runs-dir", str(tmp_path),
                 "--name", "smoke"])
    assert code == 0
    with open(tmp_path / "smoke" / "leaderboard.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["rank"] for row in rows] == ["1", "2"]
    assert {row["family"] for row in rows} == {"plain_cnn", "dilated_cnn"}
    scores = [float(row["val_abs_sum"]) for row in rows]
    assert scores == sorted(scores) and all(0 <= s <= 2 * 400 for s in scores)
    out = capsys.readouterr().out
    assert "family" in out and "val abs-sum" in out and "plain_cnn" in out


def test_search_on_a_file(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    labels = np.arange(120) % 3
    signals = rng.random((120, 40)) * 0.2 + labels[:, None] * 0.3
    competition_csv(tmp_path / "train.csv", signals, labels=labels, label_format="{}.0")
    code = main(["search", "--arch", "plain_cnn", "--data", str(tmp_path / "train.csv"), "--epochs", "1",
                 "--runs-dir", str(tmp_path), "--name", "file"])
    assert code == 0
    assert (tmp_path / "file" / "leaderboard.csv").exists()


@pytest.mark.parametrize("args, message", [
    (["--arch", "resnet"], "unknown model 'resnet'"),
    (["--data", "missing.csv"], "missing.csv: file not found"),
])
def test_search_script_errors_are_one_line_exit_2(tmp_path, args, message):
    result = subprocess.run([sys.executable, "search.py", *args, "--runs-dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and message in result.stderr
    assert "Traceback" not in result.stderr
