"""The configured optimizer, penalty and constraints (the implementation of
:mod:`cnnlab.optim`'s interface)."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.optim.config import OptimCommon
from cnnlab.optim.groups import param_groups, parameter_layers
from cnnlab.optim.optimizers import OPTIMIZERS, UpdateRule
from cnnlab.optim.regularizers import apply_max_norm, clip_gradients, penalty
from cnnlab.optim.schedules import SCHEDULES, LRScheduler


def build_optimizer(cfg: OptimCommon, model: nn.Module) -> torch.optim.Optimizer:
    """The configured rule over ``model``'s trainable parameters, grouped by lr multiplier.

    The optimizer has ``needs_closure`` (True for L-BFGS: call ``step(closure)``).
    """
    return OPTIMIZERS.get(cfg.name)(param_groups(model, cfg.lr, cfg.layer_lr), cfg)


def regularization(cfg: OptimCommon, model: nn.Module) -> torch.Tensor | None:
    """The penalty added to the data loss: L2, L1 or elastic net (None when off)."""
    return penalty(model, l2=cfg.l2, l1=cfg.l1, include_all=cfg.regularize_all)


def clip_gradient_norm(cfg: OptimCommon, model: nn.Module) -> None:
    """Before the step: global gradient-norm clipping when ``optim.clip_grad_norm`` is set."""
    if cfg.clip_grad_norm is not None:
        clip_gradients(model, cfg.clip_grad_norm)


def apply_constraints(cfg: OptimCommon, model: nn.Module) -> None:
    """After the step: the max-norm projection when ``optim.max_norm`` is set."""
    if cfg.max_norm is not None:
        apply_max_norm(model, cfg.max_norm, cfg.regularize_all)
