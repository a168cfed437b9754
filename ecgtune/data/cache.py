"""A cache of parsed data files, keyed by a 128-bit hash (XXH3) of each file's bytes and its size.

An entry is a folder named by the digest holding the parsed arrays as `.npy` (no pickle) and a small
`meta.json` with an XXH3-128 digest of each array. A cached load maps the arrays copy-on-write (processes
reading the same entry share its pages, and writes to the arrays stay private) and checks them against
their digests, so that an entry edited or damaged on disk is parsed again rather than trusted; an entry
is replaced whole (`ecgtune.atomic.replace_folder`), and what a killed store left behind is removed later.
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
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xxhash

from ecgtune.atomic import clean_staging, make_staging_folder, replace_folder, write_text_atomically

FORMAT_VERSION = 3  # 3: meta.json holds each array's digest
ARRAY_NAMES = ("ids", "signals", "labels")
RACY_WINDOW_NS = 1_000_000_000
STALE_STAGING_S = 3600  # no store takes this long, so an older staging folder was left by a killed run
STAGING_NAME = re.compile(r"\.([0-9a-f]{32}-[0-9]+)\.(staging-[a-z0-9_]{8}|previous)")  # see ecgtune.atomic


@dataclass(frozen=True)
class ParsedBeats:
    """A data file as parsed and checked, before it becomes `HeartbeatData`: what an entry keeps."""

    ids: np.ndarray
    signals: np.ndarray               # (rows, samples), float32
    labels: np.ndarray | None         # int64, or None for a file without labels
    notes: list[str] = field(default_factory=list)  # warnings about the file, repeated on every load


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


def array_digest(array: np.ndarray) -> str:
    """XXH3-128 of an array's dtype, shape and values (in C order)."""
    hasher = xxhash.xxh3_128(f"{array.dtype.str}{array.shape}".encode())
    hasher.update(np.ascontiguousarray(array).view(np.uint8))
    return hasher.hexdigest()


def load_entry(root: Path, digest: str) -> ParsedBeats | None:
    """What is stored under `digest`, or None when absent, unreadable or not as stored."""
    folder = root / digest
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != FORMAT_VERSION:
            return None
        stored = meta["arrays"]
        arrays = {
            name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False))
            if name in stored else None
            for name in ARRAY_NAMES
        }
        # Reading every page once to hash it is the price of not trusting the disk (BENCHMARKS.md section 1).
        if any(array is not None and array_digest(array) != stored[name] for name, array in arrays.items()):
            return None
        notes = [str(note) for note in meta["warnings"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    signals, ids, labels = arrays["signals"], arrays["ids"], arrays["labels"]
    if signals is None or ids is None or signals.ndim != 2 or signals.dtype != np.float32:
        return None
    if ids.shape != (signals.shape[0],) or (labels is not None and labels.shape != ids.shape):
        return None
    return ParsedBeats(ids, signals, labels, notes)


def store_entry(root: Path, digest: str, parsed: ParsedBeats) -> None:
    """Stores a parsed file under `digest`, replacing what is there; the entry appears whole or not at
    all. Failures are ignored: the cache only saves time."""
    folder = root / digest
    try:
        _remove_stale_staging(root, digest)
        staging = make_staging_folder(folder)
    except OSError:
        return
    try:
        stored = {}
        for name in ARRAY_NAMES:
            array = getattr(parsed, name)
            if array is not None:
                np.save(staging / f"{name}.npy", array, allow_pickle=False)
                stored[name] = array_digest(array)
        meta = {"version": FORMAT_VERSION, "arrays": stored, "warnings": parsed.notes}
        (staging / "meta.json").write_text(json.dumps(meta))
        replace_folder(staging, folder, durable=False)  # the digests catch a torn entry
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_staging(root: Path, digest: str) -> None:
    """Removes what killed stores left beside the entries: of this entry, whatever is there (a store of the
    same file running beside this one may lose its staging folder, which only costs it its store); of
    another entry, only when all of it is old enough that no store of it can still be running. Only
    digest-shaped names are touched: the cache folder may be shared."""
    now, young, old = time.time(), set(), set()
    for path in root.glob(".*"):
        named = STAGING_NAME.fullmatch(path.name)
        with contextlib.suppress(OSError):
            if named:
                (old if now - path.stat().st_mtime > STALE_STAGING_S else young).add(named.group(1))
    for leftover in (old - young) | ({digest} & (old | young)):
        clean_staging(root / leftover)
