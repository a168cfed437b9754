"""Ray's session on this machine: starting or joining it, and ending what a killed run left behind.

Nothing here imports Ray at module level, so that a local start can keep Ray's servers on the loopback
interface: Ray decides that when it is imported.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
from pathlib import Path

from ecgtune.atomic import write_text_atomically
from ecgtune.errors import ConfigError

# Ray's switch between a single-machine node on 127.0.0.1 and one reachable from other machines (made for
# Windows and macOS, honoured on Linux too): with "0" every Ray server of a local run listens on the
# loopback interface alone instead of every interface
LOOPBACK_ONLY_VARIABLE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_ray(address: str | None = None) -> None:
    """Joins the cluster at `address` (auto, or ray://host:10001), else starts Ray on this machine on the
    loopback interface only, without its dashboard and job API (Ray's own ports use its token
    authentication), first ending what a killed ecgtune run left of its own local Ray session. Workers'
    output stays in Ray's logs: Tune reports each trial's results and errors, and a worker that Ray ends
    prints an "Exception ignored ... SystemExit" traceback the user can do nothing about.

    Call it before anything imports Ray: Ray reads LOOPBACK_ONLY_VARIABLE when it is imported."""
    if not address:
        os.environ.setdefault(LOOPBACK_ONLY_VARIABLE, "0")
    import ray

    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # Tune's older output engine honours verbose=0 (the newer one prints its configuration box and a
    # TensorBoard hint into Ray's temporary folder whatever the verbosity): ProgressLine reports instead.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    for name in ("ray", "ray.tune"):
        logging.getLogger(name).setLevel(logging.WARNING)  # their INFO lines are nothing a user can act on
    # Ray announces on every start that token authentication, its default for local clusters, is on
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # and warns of every trial stopped before its first report, which the leaderboard counts already
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    if ray.is_initialized():
        return
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            end_leftover_sessions()
            started = ray.init(dashboard_host="127.0.0.1", include_dashboard=False, log_to_driver=False,
                               logging_level=logging.WARNING)
            _record_session(Path(started.address_info["session_dir"]).name)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ConfigError(f"cannot start or join Ray{' at ' + address if address else ''}: {error}") from None


def _session_records() -> Path:
    from ecgtune.data.cache import cache_root

    return cache_root() / "ray-sessions"


def _record_session(session: str) -> None:
    """Notes which local Ray session this driver started, until it exits normally."""
    record = _session_records() / f"{os.getpid()}.json"
    write_text_atomically(record, json.dumps({"driver_pid": os.getpid(), "session": session}))
    atexit.register(record.unlink, missing_ok=True)


def end_leftover_sessions() -> None:
    """Ends the processes of local Ray sessions whose ecgtune driver died without shutting them down
    (kill -9 leaves Ray's dashboard and runtime-env agents running). Linux only: it reads /proc."""
    for record in _session_records().glob("*.json"):
        try:
            info = json.loads(record.read_text())
            driver, session = int(info["driver_pid"]), str(info["session"])
        except (OSError, ValueError, KeyError, TypeError):
            record.unlink(missing_ok=True)
            continue
        if _alive(driver):
            continue
        for pid in session_processes(session):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGTERM)
        record.unlink(missing_ok=True)


def session_processes(session: str) -> list[int]:
    """Processes whose command line names the Ray session `session`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if session.encode() in cmdline.read_bytes() and int(cmdline.parent.name) != os.getpid():
                found.append(int(cmdline.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
