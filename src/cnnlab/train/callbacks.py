"""Callbacks built from the config (early stopping, monitoring...) and the hook dispatcher.

A callback is any object with some of the hooks listed in :class:`cnnlab.train.trainer.Callback`.
``CALLBACKS`` maps a name to ``factory(cfg) -> callback | None``; every factory is asked in
turn and returns None when its part of the config is off.
"""

from __future__ import annotations

from typing import Any, Callable

from cnnlab.registry import Registry

CALLBACKS: Registry[Callable[[Any], Any]] = Registry("callback")


def build_callbacks(cfg) -> list:
    # The built-in callbacks register themselves when their modules are imported.
    import cnnlab.monitor.callbacks  # noqa: F401  (monitor, sanity)
    import cnnlab.train.early_stopping  # noqa: F401

    built = (CALLBACKS.get(name)(cfg) for name in CALLBACKS.names())
    return [cb for cb in built if cb is not None]


def call_hook(callbacks, hook: str, *args) -> list:
    return [getattr(cb, hook)(*args) for cb in callbacks if hasattr(cb, hook)]
