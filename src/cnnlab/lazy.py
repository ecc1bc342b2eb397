"""Lazy package exports (PEP 562).

``cnnlab.config`` imports the ``config`` module of every package, which runs each package's
``__init__``; if those imported their torch-heavy submodules eagerly, ``cnnlab --help`` and
config validation would pay for importing torch (about 2 s). Packages therefore name their
public exports here and import the submodule on first attribute access.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package`` whose ``exports`` map name -> submodule."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
