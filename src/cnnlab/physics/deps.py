"""The optional generator dependencies (``pip install cnnlab[jets]``), imported on demand.

Pythia 8 (``pythia8mc``) and FastJet (``fastjet``) are only needed to *generate* jets; reading
a jets file, training and evaluating need neither. A missing one is a user mistake with a fix,
so it raises :class:`~cnnlab.errors.UserError` (exit code 2) saying how to install it.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager

from cnnlab.errors import UserError

INSTALL_HINT = "pip install 'cnnlab[jets]'  (pythia8mc==8.317.2 and fastjet)"


class MissingDependency(UserError):
    """pythia8mc or fastjet is not installed."""


def require(module: str):
    """Import ``module`` (``pythia8mc`` or ``fastjet``) or raise MissingDependency."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"jet generation needs the Python module '{module}', which is not "
                                f"installed ({exc}). Install it with: {INSTALL_HINT}") from None


def versions() -> dict[str, str]:
    """Versions of the generator packages (stored in every jets file)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("pythia8mc", "fastjet", "numpy", "h5py"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


@contextmanager
def stdout_to_stderr():
    """Send C-level stdout to stderr: FastJet prints its banner on stdout at first use, which
    would corrupt ``--json`` output."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
