"""Files and folders that appear whole or not at all: written beside the target, then renamed in."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside `path`; on success it replaces `path` (with the permissions a
    new file would get under the umask), on failure it is removed."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Writes `text` to `path`, creating its folder; the file appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        temporary.write_text(text)


STAGING_INFIX = ".staging-"


def make_staging_folder(target: Path) -> Path:
    """A new empty folder beside `target`, named `.NAME.staging-` and eight random characters, to build
    the next version of `target` in, with the permissions a new folder gets under the umask (mkdtemp's
    own are 0700)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_INFIX}", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    return staging


def replace_folder(staging: Path, target: Path, durable: bool = True) -> None:
    """Puts the complete folder `staging` at `target`, its files on disk first (`durable`; a cache
    that verifies its entries can skip that). Where the system can swap two folders in one step
    (Linux's renameat2), a complete folder is at `target` at every instant; elsewhere the old one is
    renamed aside first, and `clean_staging` puts it back if a kill came between the two renames.
    The old version is deleted last."""
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(target))
    if durable:
        _sync_tree(staging)
    if not target.exists():
        os.rename(staging, target)
    elif _exchange(staging, target):
        _remove(staging)  # after the swap it holds the old version
    else:
        aside = _aside(target)
        with contextlib.suppress(FileNotFoundError):
            _remove(aside)
        os.rename(target, aside)
        os.rename(staging, target)
        _remove(aside)
    if durable:
        _sync_folder(target.parent)


def clean_staging(target: Path) -> None:
    """Removes what an interrupted `make_staging_folder`/`replace_folder` left beside `target`, first
    restoring `target` from its renamed-aside version when only that survived."""
    aside = _aside(target)
    if aside.is_dir() and not aside.is_symlink():
        if target.exists():
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(aside, target)
    # Exactly mkdtemp's names for this target, so that a sibling such as NAME.v2 keeps its own.
    staging_name = re.compile(re.escape(f".{target.name}{STAGING_INFIX}") + r"[a-z0-9_]{8}")
    for leftover in target.parent.iterdir() if target.parent.is_dir() else ():
        if staging_name.fullmatch(leftover.name) and leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)


def _umask() -> int:
    """The process's umask: reading it means setting it, so it is put straight back."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _remove(path: Path) -> None:
    """Deletes a folder, or only the link where the old version of `target` was a link to a folder."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path)


def _aside(target: Path) -> Path:
    return target.parent / f".{target.name}.previous"


def _exchange(first: Path, second: Path) -> bool:
    """Swaps two paths in one step with renameat2(RENAME_EXCHANGE); False where that is not offered."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange) == 0


def _sync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            _fsync(path)
    _sync_folder(folder)


def _sync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every system lets a folder be opened for fsync
        _fsync(folder)


def _fsync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)  # a read-only descriptor syncs too: read-only files need no write access
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
