"""Training: the loop, run directories, checkpoints and evaluation.

Names are imported lazily: :mod:`cnnlab.config` imports ``cnnlab.train.config`` and the
trainer imports :mod:`cnnlab.config`, so an eager import here would be circular.
"""

import importlib

_EXPORTS = {
    "RunDir": "rundir", "SplitResult": "evaluation", "evaluate_split": "evaluation",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "Trainer": "trainer", "TrainResult": "trainer", "resume_run": "trainer", "start_run": "trainer",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"cnnlab.train.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'cnnlab.train' has no attribute {name!r}")


__all__ = list(_EXPORTS)
