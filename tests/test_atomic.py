import os
import stat
from pathlib import Path

import pytest

from ecgtune import atomic
from ecgtune.atomic import clean_staging, make_staging_folder, replace_folder


class Killed(BaseException):
    """Stands in for a kill: nothing after it runs, not even `except Exception` handlers."""


@pytest.fixture(params=["exchange", "rename aside"])
def swap(request, monkeypatch):
    """Runs a test with Linux's one-step swap and again with the fallback of two renames."""
    if request.param == "rename aside":
        monkeypatch.setattr(atomic, "_exchange", lambda first, second: False)
    return request.param


def _folder(path: Path, files: dict[str, str]) -> Path:
    path.mkdir()
    for name, text in files.items():
        (path / name).write_text(text)
    return path


def _contents(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


@pytest.fixture
def umask():
    """Sets a umask that neither mkdtemp's 0700 nor the usual 022 would give, and restores the old one."""
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def test_replace_folder_swaps_in_the_new_version(tmp_path, swap, umask):
    target = _folder(tmp_path / "bundle", {"a.txt": "old", "only_old.txt": "old"})
    staging = make_staging_folder(target)
    (staging / "a.txt").write_text("new")
    replace_folder(staging, target)
    assert _contents(target) == {"a.txt": "new"}
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask


def test_replace_folder_creates_a_missing_target(tmp_path, umask):
    target = tmp_path / "runs" / "bundle"
    staging = make_staging_folder(target)
    (staging / "a.txt").write_text("new")
    replace_folder(staging, target)
    assert _contents(target) == {"a.txt": "new"} and [path.name for path in target.parent.iterdir()] == ["bundle"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask


def test_replace_folder_replaces_a_link_not_the_folder_it_points_to(tmp_path, swap):
    real = _folder(tmp_path / "real", {"a.txt": "old"})
    target = tmp_path / "bundle"
    target.symlink_to(real, target_is_directory=True)
    staging = make_staging_folder(target)
    (staging / "a.txt").write_text("new")
    replace_folder(staging, target)
    assert not target.is_symlink() and _contents(target) == {"a.txt": "new"}
    assert _contents(real) == {"a.txt": "old"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bundle", "real"]


def test_clean_staging_removes_leftovers_and_keeps_the_rest(tmp_path):
    target = _folder(tmp_path / "bundle", {"a.txt": "current"})
    _folder(tmp_path / ".bundle.staging-x7k2ab_9", {"half.onnx": "half"})
    _folder(tmp_path / ".bundle.previous", {"a.txt": "older"})
    _folder(tmp_path / ".bundles.staging-x7k2ab_9", {"a.txt": "another target's"})
    _folder(tmp_path / ".bundle.v2.staging-x7k2ab_9", {"a.txt": "a sibling's, bundle.v2"})
    _folder(tmp_path / ".bundle.v2.previous", {"a.txt": "a sibling's only surviving copy"})
    (tmp_path / ".bundle.notes").write_text("a file, not a staging folder")
    clean_staging(target)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        ".bundle.notes", ".bundle.v2.previous", ".bundle.v2.staging-x7k2ab_9", ".bundles.staging-x7k2ab_9", "bundle"]
    assert _contents(target) == {"a.txt": "current"}


def test_clean_staging_restores_a_target_renamed_aside(tmp_path):
    _folder(tmp_path / ".bundle.previous", {"a.txt": "old"})
    _folder(tmp_path / ".bundle.staging-x7k2ab_9", {"a.txt": "new, never renamed in"})
    clean_staging(tmp_path / "bundle")
    assert _contents(tmp_path / "bundle") == {"a.txt": "old"}
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]


def test_a_kill_between_the_two_renames_loses_nothing(tmp_path, monkeypatch):
    target = _folder(tmp_path / "bundle", {"a.txt": "old"})
    staging = make_staging_folder(target)
    (staging / "a.txt").write_text("new")
    monkeypatch.setattr(atomic, "_exchange", lambda first, second: False)
    renames = []
    real_rename = os.rename

    def rename_then_die(source, destination):
        renames.append(source)
        if len(renames) == 2:  # the old version is aside, the new one not yet in
            raise Killed
        real_rename(source, destination)

    monkeypatch.setattr(atomic.os, "rename", rename_then_die)
    with pytest.raises(Killed):
        replace_folder(staging, target)
    monkeypatch.setattr(atomic.os, "rename", real_rename)
    assert not target.exists()
    clean_staging(target)
    assert _contents(target) == {"a.txt": "old"}
    assert [path.name for path in tmp_path.iterdir()] == ["bundle"]


def test_a_file_in_the_targets_place_is_refused_before_anything_moves(tmp_path):
    target = tmp_path / "bundle"
    target.write_text("not a folder")
    staging = make_staging_folder(target)
    with pytest.raises(NotADirectoryError):
        replace_folder(staging, target)
    assert target.read_text() == "not a folder" and staging.is_dir()
