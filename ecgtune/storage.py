"""Where an experiment's trials are kept: a local folder, or a URI that Ray's storage understands
(s3://bucket/path, gs://...)."""

from __future__ import annotations

import os


def is_remote(location: str | os.PathLike) -> bool:
    """Whether `location` is a URI rather than a local folder (judged on the text: `Path` folds "//")."""
    return "://" in str(location)
