"""Exceptions and warnings that the command line turns into one clear line (exit code 2)."""

from __future__ import annotations


class EcgtuneError(Exception):
    """An error caused by the user's input or settings, reported without a traceback."""


class DataError(EcgtuneError, ValueError):
    """A data file that cannot be used: the message names the file, the row id and the problem."""


class DataWarning(UserWarning):
    """Something odd in a data file that does not stop the work (values outside [0, 1], empty classes)."""


class Interrupted(EcgtuneError):
    """The user stopped the run (Ctrl-C); the message says what was kept and how to continue (exit 130)."""


class ConfigError(EcgtuneError, ValueError):
    """An unknown name or an invalid setting: the message lists what is valid."""
