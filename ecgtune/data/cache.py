"""A cache of parsed data files, keyed by a 128-bit hash (XXH3) of each file's bytes and its size.

An entry is a folder named by the digest holding the parsed arrays as `.npy` (no pickle) and a small
`meta.json`. A cached load maps the arrays copy-on-write instead of reading them, so it costs next
to nothing, processes reading the same entry share its pages, and writes to the arrays stay private.
To find the digest of a file it has seen before without reading it again, the cache keeps
an index from the file's path and `stat` fingerprint (size, inode, mtime and ctime in nanoseconds) to
its digest. Any write to a file changes its ctime, so a changed file misses the index and is hashed
again. As in git's "racily clean" rule, a fingerprint is only recorded for a file that had not been
touched for a second, so a change within the file system's timestamp granularity cannot go unseen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xxhash

from ecgtune.atomic import write_text_atomically

FORMAT_VERSION = 2
ARRAY_NAMES = ("ids", "signals", "labels")
RACY_WINDOW_NS = 1_000_000_000


def cache_root() -> Path:
    """Where parsed files are cached: $ECGTUNE_CACHE_DIR, else $XDG_CACHE_HOME/ecgtune, else ~/.cache/ecgtune."""
    if os.environ.get("ECGTUNE_CACHE_DIR"):
        return Path(os.environ["ECGTUNE_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ecgtune"


def content_digest(content) -> str:
    """Key of a file's bytes: XXH3-128 (about 10 GB/s, so hashing costs little beside parsing) and size."""
    return f"{xxhash.xxh3_128_hexdigest(content)}-{len(content)}"


def _fingerprint(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_ctime_ns]


def _index_path(root: Path, path: Path) -> Path:
    name = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    return root / "index" / f"{name}.json"


def known_digest(root: Path, path: Path, stat: os.stat_result) -> str | None:
    """The digest recorded for `path` if the file is unchanged since, else None."""
    try:
        record = json.loads(_index_path(root, path).read_text())
        if record["fingerprint"] == _fingerprint(stat):
            return str(record["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def remember_digest(root: Path, path: Path, stat: os.stat_result, digest: str) -> None:
    """Records `digest` for the file as `stat` saw it, unless the file was modified too recently to trust."""
    if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < RACY_WINDOW_NS:
        return
    record = {"path": str(path.resolve()), "fingerprint": _fingerprint(stat), "digest": digest}
    with contextlib.suppress(OSError):
        write_text_atomically(_index_path(root, path), json.dumps(record))


def load_entry(root: Path, digest: str) -> tuple[dict[str, np.ndarray | None], list[str]] | None:
    """Arrays and warnings stored under `digest`, or None when absent or unreadable."""
    folder = root / digest
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != FORMAT_VERSION:
            return None
        arrays = {
            name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False))
            if name in meta["arrays"] else None
            for name in ARRAY_NAMES
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None
    signals, ids, labels = arrays["signals"], arrays["ids"], arrays["labels"]
    if signals is None or ids is None or signals.ndim != 2 or signals.dtype != np.float32:
        return None
    if ids.shape != (signals.shape[0],) or (labels is not None and labels.shape != ids.shape):
        return None
    return arrays, list(meta["warnings"])


def store_entry(root: Path, digest: str, arrays: dict[str, np.ndarray | None], warnings: list[str]) -> None:
    """Stores arrays under `digest`; the entry appears whole or not at all. Failures are ignored."""
    folder = root / digest
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=root))
    except OSError:
        return
    try:
        present = [name for name in ARRAY_NAMES if arrays.get(name) is not None]
        for name in present:
            np.save(staging / f"{name}.npy", arrays[name], allow_pickle=False)
        meta = {"version": FORMAT_VERSION, "arrays": present, "warnings": warnings}
        (staging / "meta.json").write_text(json.dumps(meta))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.rename(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
