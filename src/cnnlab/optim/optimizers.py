"""Update rules: a registry from names to ``(params, cfg) -> torch.optim.Optimizer``."""

from __future__ import annotations

import torch

from cnnlab.optim.config import OptimConfig
from cnnlab.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")


@OPTIMIZERS.register("sgd")
def sgd(param_groups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Mini-batch SGD with (Nesterov) momentum, cs231n convention (seeds/003):

        v = mu * v - lr * dx;  x += v            (momentum)
        x += -mu * v_prev + (1 + mu) * v         (Nesterov, in its "look-ahead" form)

    torch's SGD keeps v' = -v / lr, which is the same update while lr is constant.
    """
    return torch.optim.SGD(param_groups, lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov and cfg.momentum > 0)
