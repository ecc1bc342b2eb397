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


def step_rates(cfg: OptimCommon, batch_size: int | None = None) -> tuple[float, float]:
    """(lr, weight decay) of one step of the mean-loss gradient, from the config.

    Plain: ``(optim.lr, optim.weight_decay)``. With ``optim.per_1024`` (airbench94's decoupled
    statement, its hyperparameters "per 1024 examples")::

        k = (B / 1024) / (1 + 1 / (1 - mu))        B = train.batch_size (global), mu = momentum
        lr_step = k lr,   wd_step = k wd

    airbench94 sums the loss over the batch and uses ``lr / (1024 (1 + 1/(1 - mu)))``; cnnlab
    averages it, so the factor B moves into k. 1 + 1/(1 - mu) is airbench's size of a Nesterov
    step relative to a constant gradient, so the average step no longer depends on mu.
    """
    lr, wd = cfg.lr, getattr(cfg, "weight_decay", 0.0)
    if not getattr(cfg, "per_1024", False):
        return lr, wd
    if batch_size is None:
        raise ValueError("optim.per_1024 needs the batch size (build_optimizer(..., batch_size=))")
    k = (batch_size / 1024) / (1 + 1 / (1 - cfg.momentum))
    return k * lr, k * wd


def build_optimizer(cfg: OptimCommon, model: nn.Module, batch_size: int | None = None) -> torch.optim.Optimizer:
    """The configured rule over ``model``'s trainable parameters, grouped by lr multiplier (and
    by weight decay, when ``optim.weight_decay`` is set). ``batch_size``: the global batch, for
    ``optim.per_1024``.

    The optimizer has ``needs_closure`` (True for L-BFGS: call ``step(closure)``).
    """
    lr, wd = step_rates(cfg, batch_size)
    groups = param_groups(model, lr, cfg.layer_lr, weight_decay=wd, decay_all=cfg.regularize_all)
    return OPTIMIZERS.get(cfg.name)(groups, cfg)


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
