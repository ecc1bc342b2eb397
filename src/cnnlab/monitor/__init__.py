"""Babysitting the learning process (seeds/002, /003): sanity checks before training,
per-layer statistics during it, optional TensorBoard.

Public interface::

    findings = run_sanity(cfg, overfit=True)      # list[Finding], see cnnlab.monitor.sanity
    parametric_layers(model), activation_layers(model)   # named layers, see .layers

The ``monitor`` and ``sanity`` training callbacks live in :mod:`cnnlab.monitor.callbacks`
(registered in :data:`cnnlab.train.callbacks.CALLBACKS` when the trainer builds its callbacks).
Names are imported on first use (:mod:`cnnlab.lazy`): :mod:`cnnlab.config` imports
:mod:`cnnlab.monitor.config`, and reading a config should not import torch.
"""

from cnnlab.lazy import lazy_exports

_EXPORTS = {"MonitorConfig": "config", "activation_layers": "layers", "parametric_layers": "layers"}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
