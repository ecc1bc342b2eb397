"""Training: the loop, run directories, checkpoints and evaluation.

Names are imported lazily, so that importing ``cnnlab.train.config`` (config validation) does
not import torch.

The package is also callable: ``cnnlab.train("lenet5-mnist", optim={"lr": 0.1})`` is
:func:`cnnlab.api.train`, so the Python verb is the command line's (``cnnlab train``) although
``cnnlab.train`` is this package's name too.
"""

import sys
import types

from cnnlab.lazy import lazy_exports

_EXPORTS = {
    "RunDir": "rundir", "SplitResult": "evaluation", "evaluate_split": "evaluation",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "Trainer": "trainer", "TrainResult": "trainer", "resume_run": "resume", "start_run": "trainer",
}


__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from cnnlab.api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
