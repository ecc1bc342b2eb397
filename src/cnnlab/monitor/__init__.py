"""Babysitting the learning process (seeds/002, /003): sanity checks before training,
per-layer statistics during it, optional TensorBoard.

Public interface::

    findings = run_sanity(cfg, overfit=True)      # list[Finding], see cnnlab.monitor.sanity
    parametric_layers(model), activation_layers(model)   # named layers, see .layers

Importing this package registers the ``monitor`` and ``sanity`` training callbacks
(:data:`cnnlab.train.callbacks.CALLBACKS`); it must stay light (no cnnlab.config import at
module level), because :mod:`cnnlab.config` imports :mod:`cnnlab.monitor.config`.
"""

from __future__ import annotations

from cnnlab.monitor import callbacks as _callbacks  # noqa: F401  (registers the callbacks)
from cnnlab.monitor.config import MonitorConfig
from cnnlab.monitor.layers import activation_layers, parametric_layers

__all__ = ["MonitorConfig", "activation_layers", "parametric_layers"]
