"""Only state that ecgtune wrote for this user is trusted.

Ray keeps an experiment's state as pickles (tuner.pkl, the searcher's state, each trial's params.pkl,
and the trials themselves inside experiment_state-*.json), and loading a pickle runs whatever code it
names. So after every search and retraining, ecgtune signs those files and search.json with an HMAC
under a per-user key kept outside the runs folder, and refuses to resume an experiment whose
signature is missing or does not match. `--trust-state` re-signs a folder the user vouches for (their
own experiment copied from another machine, or one whose run was killed before it could sign).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from ecgtune.atomic import write_text_atomically
from ecgtune.errors import EcgtuneError
from ecgtune.storage import is_remote

SIGNATURE_FILE = "state.sig"
SIGNED_PATTERNS = ("search.json", "*.pkl", "*/*.pkl", "experiment_state-*.json", "search_gen_state-*.json",
                   "basic-variant-state-*.json")
TRUST_FLAG = "--trust-state"


def key_path() -> Path:
    """The signing key: $ECGTUNE_KEY_FILE, else $XDG_CONFIG_HOME/ecgtune/state.key, else
    ~/.config/ecgtune/state.key."""
    if os.environ.get("ECGTUNE_KEY_FILE"):
        return Path(os.environ["ECGTUNE_KEY_FILE"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "ecgtune" / "state.key"


def _key() -> bytes:
    """This user's key, created (readable by the user alone) on first use."""
    path = key_path()
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as error:
        raise EcgtuneError(f"{path}: unreadable signing key ({error}); delete it to make a new one, "
                           f"then accept your experiments again with {TRUST_FLAG}") from None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_hex(32)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(handle, "w") as stream:
        stream.write(key + "\n")
    return bytes.fromhex(key)


def _signed_files(folder: Path) -> list[str]:
    names = {path.relative_to(folder).as_posix() for pattern in SIGNED_PATTERNS for path in folder.glob(pattern)
             if path.is_file() or path.is_symlink()}
    return sorted(names)


def _digest(key: bytes, path: Path) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            mac.update(block)
    return mac.hexdigest()


def _listing_mac(key: bytes, files: dict[str, str]) -> str:
    return hmac.new(key, json.dumps(files, sort_keys=True).encode(), hashlib.sha256).hexdigest()


def _local_folder(location: str | Path) -> Path | None:
    """The experiment folder, or None where there is none here: remote storage (s3://...) or no folder."""
    if is_remote(location) or not Path(location).is_dir():
        return None
    return Path(location)


def sign_state(location: str | Path) -> None:
    """Signs the state files in an experiment folder (no-op for remote storage)."""
    folder = _local_folder(location)
    if folder is None:
        return
    key = _key()
    files = {name: _digest(key, folder / name) for name in _signed_files(folder)
             if not (folder / name).is_symlink()}
    signature = {"format": 1, "files": files, "mac": _listing_mac(key, files)}
    write_text_atomically(folder / SIGNATURE_FILE, json.dumps(signature, indent=1))


def is_signed(folder: str | Path) -> bool:
    """Whether every state file in the folder carries this user's signature."""
    try:
        verify_state(folder)
    except EcgtuneError:
        return False
    return True


def verify_state(location: str | Path) -> None:
    """Raises EcgtuneError unless every state file in the folder carries this user's signature."""
    folder = _local_folder(location)
    if folder is None:  # nothing here to load
        return
    refusal = (f"Ray's state files are pickles, which run code when loaded, so this experiment is not resumed. "
               f"If it is your own (copied from another machine, or its run was killed), accept it with "
               f"{TRUST_FLAG}")
    key = _key()
    try:
        signature = json.loads((folder / SIGNATURE_FILE).read_text())
        files = dict(signature["files"])
        listed_mac = str(signature["mac"])
    except FileNotFoundError:
        raise EcgtuneError(f"{folder}: the experiment's state is not signed ({SIGNATURE_FILE} is missing). "
                           f"{refusal}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise EcgtuneError(f"{folder / SIGNATURE_FILE}: unreadable signature. {refusal}") from None
    if not hmac.compare_digest(listed_mac, _listing_mac(key, files)):
        raise EcgtuneError(f"{folder / SIGNATURE_FILE}: not signed with this user's key ({key_path()}). {refusal}")
    for name in sorted(set(_signed_files(folder)) | set(files)):
        path = folder / name
        if name not in files:
            problem = "is not signed"
        elif path.is_symlink() or not path.is_file():
            problem = "is missing" if not path.exists() else "is not a plain file"
        elif not hmac.compare_digest(files[name], _digest(key, path)):
            problem = "changed since ecgtune signed it"
        else:
            continue
        raise EcgtuneError(f"{path}: {problem}. {refusal}")
