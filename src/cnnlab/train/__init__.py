"""Training: the loop, run directories, checkpoints and evaluation.

Names are imported lazily: :mod:`cnnlab.config` imports ``cnnlab.train.config`` and the
trainer imports :mod:`cnnlab.config`, so an eager import here would be circular.
"""

from cnnlab.lazy import lazy_exports

_EXPORTS = {
    "RunDir": "rundir", "SplitResult": "evaluation", "evaluate_split": "evaluation",
    "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "Trainer": "trainer", "TrainResult": "trainer", "resume_run": "trainer", "start_run": "trainer",
}


__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
