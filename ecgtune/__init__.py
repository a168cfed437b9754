"""ecgtune: hyper-parameter search and ensembling for heartbeat (ECG beat) classification.

The Python API (`ecgtune.api`): `search`, `load_bundle`, `read_heartbeats` and `Experiment`; it is
imported on first use, so that the commands start without pandas.
"""

__version__ = "0.1.0"

__all__ = ["EcgtuneError", "Experiment", "load_bundle", "read_heartbeats", "search"]


def __getattr__(name: str):
    if name == "EcgtuneError":
        from ecgtune.errors import EcgtuneError

        return EcgtuneError
    if name in __all__:
        from ecgtune import api

        return getattr(api, name)
    raise AttributeError(f"module 'ecgtune' has no attribute {name!r}")
