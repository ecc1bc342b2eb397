"""Exceptions that carry an exit code, so the CLI can turn them into one clear line.

Exit codes (documented in the README): 0 success, 2 bad input or config, 1 anything else.
A :class:`UserError` is a mistake the user can fix; the CLI prints its message without a
traceback.  Anything else is a bug or an environment failure and keeps its traceback.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class for errors raised deliberately by cnnlab."""

    exit_code = 1


class UserError(CnnlabError):
    """Bad input: a config, a file, a path or a command-line argument the user can fix."""

    exit_code = 2


class ConfigError(UserError):
    """The experiment config is invalid (unknown key, wrong type, out of range)."""


class DataError(UserError):
    """A dataset file is missing, truncated, corrupt or inconsistent."""


class CheckpointError(UserError):
    """A run directory or checkpoint cannot be used (not a run, other architecture...)."""


class TrainingDiverged(CnnlabError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""
