"""Penalties added to the data loss. Parameters are tagged weights vs. biases/norms by shape:
weights (ndim > 1) are regularised, biases and batch-norm parameters are not (seeds/000 C.1)."""

from __future__ import annotations

import torch
from torch import nn


def weight_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The regularisable parameters: conv kernels and fc weight matrices."""
    return [p for p in model.parameters() if p.requires_grad and p.ndim > 1]


def l2_penalty(model: nn.Module, strength: float) -> torch.Tensor | None:
    """R(W) = (1/2) lambda sum_w w^2 (seeds/000 appendix C.1), so dR/dw = lambda w."""
    if strength == 0:
        return None
    return 0.5 * strength * sum(p.pow(2).sum() for p in weight_parameters(model))
