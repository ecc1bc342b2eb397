"""Optimization: update rules, learning-rate schedules and regularisers.

Public interface::

    optimizer = build_optimizer(cfg.optim, model)
    scheduler = LRScheduler(cfg.schedule, optimizer, steps_per_epoch, total_steps)
    penalty = regularization(cfg.optim, model)   # tensor or None, added to the data loss
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.optim.config import OptimConfig, ScheduleConfig
from cnnlab.optim.optimizers import OPTIMIZERS
from cnnlab.optim.regularizers import l2_penalty
from cnnlab.optim.schedules import SCHEDULES, LRScheduler


def build_optimizer(cfg: OptimConfig, model: nn.Module) -> torch.optim.Optimizer:
    return OPTIMIZERS.get(cfg.name)([{"params": list(model.parameters())}], cfg)


def regularization(cfg: OptimConfig, model: nn.Module) -> torch.Tensor | None:
    return l2_penalty(model, cfg.l2)


__all__ = ["LRScheduler", "OPTIMIZERS", "OptimConfig", "SCHEDULES", "ScheduleConfig",
           "build_optimizer", "regularization"]
