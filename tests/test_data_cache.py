import json
import os
import time

import numpy as np
import pytest
from conftest import competition_csv

from ecgtune.data import cache, files, load_dataset
from ecgtune.errors import DataWarning

BEATS = np.array([[0.9, 0.1, 0.2], [0.8, 0.3, 0.0]])
OTHER = np.array([[0.1, 0.9, 0.2], [0.3, 0.8, 0.0]])  # same text length as BEATS


def _forbid_parsing(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(files, "_parse", fail)


def test_second_load_comes_from_the_cache(tmp_path, monkeypatch):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    first = load_dataset(path)
    _forbid_parsing(monkeypatch)
    second = load_dataset(path)
    np.testing.assert_array_equal(first.signals, second.signals)
    np.testing.assert_array_equal(first.labels, second.labels)


def test_writing_to_cached_arrays_leaves_the_cache_intact(tmp_path, monkeypatch):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    load_dataset(path)
    _forbid_parsing(monkeypatch)
    cached = load_dataset(path)
    cached.signals[:] = 7.0
    cached.labels[:] = 3
    again = load_dataset(path)
    np.testing.assert_allclose(again.signals, BEATS, rtol=1e-6)
    np.testing.assert_array_equal(again.labels, [0, 1])


def test_identical_content_elsewhere_shares_the_entry(tmp_path, monkeypatch):
    path = competition_csv(tmp_path / "a.csv", BEATS, labels=[0, 1])
    load_dataset(path)
    copy = tmp_path / "b.csv"
    copy.write_bytes(path.read_bytes())
    _forbid_parsing(monkeypatch)
    assert load_dataset(copy).source.endswith("b.csv")


def test_a_file_changed_at_once_is_parsed_again(tmp_path):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    load_dataset(path)
    stat = path.stat()
    competition_csv(path, OTHER, labels=[0, 1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    np.testing.assert_allclose(load_dataset(path).signals, OTHER.astype(np.float32))


def test_a_file_changed_later_with_its_old_size_and_mtime_is_parsed_again(tmp_path, isolated_cache):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    time.sleep(cache.RACY_WINDOW_NS / 1e9 + 0.1)
    load_dataset(path)
    assert list((isolated_cache / "index").iterdir()), "the settled file's fingerprint should be recorded"
    stat = path.stat()
    competition_csv(path, OTHER, labels=[0, 1])
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    np.testing.assert_allclose(load_dataset(path).signals, OTHER.astype(np.float32))


def test_a_damaged_entry_is_ignored(tmp_path, isolated_cache):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    load_dataset(path)
    (entry,) = [p for p in isolated_cache.iterdir() if p.name != "index"]
    (entry / "signals.npy").write_bytes(b"\x93NUMPY garbage")
    np.testing.assert_allclose(load_dataset(path).signals, BEATS.astype(np.float32))


def test_warnings_repeat_on_cached_loads(tmp_path):
    path = competition_csv(tmp_path / "train.csv", BEATS * 2, labels=[0, 1])
    for _ in range(2):
        with pytest.warns(DataWarning, match="outside"):
            load_dataset(path)


def test_cache_can_be_bypassed(tmp_path, isolated_cache):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    load_dataset(path, use_cache=False)
    assert not any(isolated_cache.iterdir())


def test_warnings_name_the_file_being_loaded_even_from_a_shared_entry(tmp_path):
    first = competition_csv(tmp_path / "first.csv", BEATS * 2, labels=[0, 1])
    second = tmp_path / "second.csv"
    second.write_bytes(first.read_bytes())
    with pytest.warns(DataWarning, match="first.csv"):
        load_dataset(first)
    with pytest.warns(DataWarning, match="second.csv"):
        load_dataset(second)


def _entry(isolated_cache):
    (entry,) = [p for p in isolated_cache.iterdir() if p.name != "index"]
    return entry


def _count_parses(monkeypatch) -> list:
    calls = []
    parse = files._parse

    def counted(*args):
        calls.append(args[0])
        return parse(*args)

    monkeypatch.setattr(files, "_parse", counted)
    return calls


def _edit_signals(entry):
    signals = np.load(entry / "signals.npy", mmap_mode="r+")
    signals[0, 1] = np.nan
    signals.flush()


def _edit_labels(entry):
    labels = np.load(entry / "labels.npy", mmap_mode="r+")
    labels[1] = 9
    labels.flush()


def _edit_shape(entry):
    """Same bytes, another shape: the beats cut differently."""
    np.save(entry / "signals.npy", np.load(entry / "signals.npy").reshape(3, 2))
    np.save(entry / "ids.npy", np.arange(3))
    np.save(entry / "labels.npy", np.array([0, 1, 0]))


def _edit_digest(entry):
    meta = json.loads((entry / "meta.json").read_text())
    meta["arrays"]["labels"] = "0" * 32
    (entry / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("edit", [_edit_signals, _edit_labels, _edit_shape, _edit_digest])
def test_an_edited_entry_is_parsed_again_and_rewritten(tmp_path, isolated_cache, monkeypatch, edit):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    load_dataset(path)
    edit(_entry(isolated_cache))
    parses = _count_parses(monkeypatch)
    loaded = load_dataset(path)
    assert len(parses) == 1
    np.testing.assert_allclose(loaded.signals, BEATS.astype(np.float32))
    np.testing.assert_array_equal(loaded.labels, [0, 1])
    entry = _entry(isolated_cache)
    np.testing.assert_allclose(np.load(entry / "signals.npy"), BEATS.astype(np.float32))
    np.testing.assert_array_equal(np.load(entry / "labels.npy"), [0, 1])
    _forbid_parsing(monkeypatch)
    np.testing.assert_array_equal(load_dataset(path).labels, [0, 1])


def test_staging_folders_left_by_killed_stores_are_removed(tmp_path, isolated_cache):
    path = competition_csv(tmp_path / "train.csv", BEATS, labels=[0, 1])
    digest = cache.content_digest(path.read_bytes())
    killed_long_ago, running = "0" * 32 + "-123", "1" * 32 + "-456"
    left = [f".{digest}.staging-killed00", f".{killed_long_ago}.staging-killed00", f".{killed_long_ago}.previous",
            f".{running}.staging-running0", ".settings.backup"]
    for name in left:
        (isolated_cache / name).mkdir()
        (isolated_cache / name / "signals.npy").write_bytes(b"partial")
    long_ago = time.time() - cache.STALE_STAGING_S - 60
    for name in left[1:3] + [".settings.backup"]:
        os.utime(isolated_cache / name, (long_ago, long_ago))
    load_dataset(path)
    remaining = sorted(p.name for p in isolated_cache.iterdir() if p.name != "index")
    assert remaining == sorted([".settings.backup", f".{running}.staging-running0", digest, killed_long_ago]), \
        "this entry's leftovers and old ones go (an entry renamed aside is put back); a running store's stays"


def test_storing_over_an_entry_replaces_it_whole(tmp_path, isolated_cache):
    first = cache.ParsedBeats(np.arange(2), BEATS.astype(np.float32), None, ["first"])
    cache.store_entry(isolated_cache, "d", first)
    cache.store_entry(isolated_cache, "d", cache.ParsedBeats(first.ids, OTHER.astype(np.float32), None, ["second"]))
    stored = cache.load_entry(isolated_cache, "d")
    np.testing.assert_allclose(stored.signals, OTHER.astype(np.float32))
    assert stored.notes == ["second"] and stored.labels is None
    assert [p.name for p in isolated_cache.iterdir()] == ["d"]
