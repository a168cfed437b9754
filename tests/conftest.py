from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own parse cache."""
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("ECGTUNE_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def isolated_signing_key(tmp_path_factory, monkeypatch):
    """Experiment state is signed with a key of the test session's own, not the user's."""
    monkeypatch.setenv("ECGTUNE_KEY_FILE", str(tmp_path_factory.getbasetemp() / "signing" / "state.key"))


def competition_csv(path: Path, signals, labels=None, ids=None, label_format="{}") -> Path:
    """Writes rows in the competition's CSV format by hand (independently of ecgtune's writer)."""
    signals = np.asarray(signals)
    ids = range(len(signals)) if ids is None else ids
    lines = ["id,heartbeat_signals" + (",label" if labels is not None else "")]
    for row, (row_id, beat) in enumerate(zip(ids, signals)):
        text = ",".join(repr(float(value)) for value in beat)
        line = f'{row_id},"{text}"'
        if labels is not None:
            line += "," + label_format.format(labels[row])
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


def nest_params(params: dict) -> dict:
    """What Ray's OptunaSearch hands a trial: flat 'a/b' parameter names nested as {'a': {'b': ...}}."""
    nested = {}
    for key, value in params.items():
        head, _, tail = key.partition("/")
        if tail:
            nested.setdefault(head, {})[tail] = value
        else:
            nested[head] = value
    return nested
