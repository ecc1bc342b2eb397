"""Optimization: update rules, learning-rate schedules and regularisers.

Public interface::

    optimizer = build_optimizer(cfg.optim, model, batch_size)  # groups carry lr_mult (batch: per_1024)
    scheduler = LRScheduler(cfg.schedule, optimizer, steps_per_epoch, total_steps)
    penalty = regularization(cfg.optim, model)         # tensor or None, added to the data loss
    clip_gradients / apply_constraints(cfg.optim, model)  # around optimizer.step()

See docs/optim.md and the README section "Optimisation and regularisation".

Names are imported on first use (:mod:`cnnlab.lazy`), so reading a config does not import torch.
"""

from cnnlab.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["LRScheduler", "OPTIMIZERS", "SCHEDULES", "UpdateRule", "apply_constraints",
                     "build_optimizer", "clip_gradient_norm", "param_groups", "parameter_layers", "step_rates",
                     "regularization"], "setup"),
    **dict.fromkeys(["OptimCommon", "OptimConfig", "ScheduleCommon", "ScheduleConfig", "optim_config",
                     "schedule_config"], "config"),
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
