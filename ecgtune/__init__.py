"""ecgtune: hyper-parameter search and ensembling for heartbeat (ECG beat) classification."""

__version__ = "0.1.0"
