"""Regularisers: penalties added to the data loss, and constraints applied around the step.

Parameters are tagged by shape, as Lasagne tags them ``regularizable``: weights (conv kernels,
fc matrices; ``ndim > 1``) are regularised, biases and batch-norm scales/shifts are not
(seeds/000 C.1 penalises "every weight"), unless ``optim.regularize_all`` asks for them too.
"""

from __future__ import annotations

import torch
from torch import nn


def regularized_parameters(model: nn.Module, include_all: bool = False) -> list[torch.Tensor]:
    """The parameters penalties and max-norm act on: weights (ndim > 1), or all if asked."""
    return [p for p in model.parameters() if p.requires_grad and (include_all or p.ndim > 1)]


def weight_parameters(model: nn.Module) -> list[torch.Tensor]:
    """The regularisable parameters: conv kernels and fc weight matrices."""
    return regularized_parameters(model)


def l2_penalty(params: list[torch.Tensor], strength: float) -> torch.Tensor:
    """R(W) = (1/2) lambda sum_w w^2 (seeds/000 appendix C.1), so dR/dw = lambda w."""
    return 0.5 * strength * sum(p.pow(2).sum() for p in params)


def l1_penalty(params: list[torch.Tensor], strength: float) -> torch.Tensor:
    """R(W) = lambda sum_w |w| (seeds/002), so dR/dw = lambda sign(w)."""
    return strength * sum(p.abs().sum() for p in params)


def penalty(model: nn.Module, l2: float = 0.0, l1: float = 0.0,
            include_all: bool = False) -> torch.Tensor | None:
    """L2, L1, or both (elastic net, seeds/002: R = sum beta w^2 + |w|, here l2/2 w^2 + l1 |w|).

    Returns None when both strengths are 0, so the loss (and its graph) is untouched.
    """
    if l2 == 0 and l1 == 0:
        return None
    params = regularized_parameters(model, include_all)
    terms = ([l2_penalty(params, l2)] if l2 else []) + ([l1_penalty(params, l1)] if l1 else [])
    return sum(terms[1:], terms[0])


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float, include_all: bool = False) -> None:
    """Max-norm constraint (Srivastava et al. 2014, s.5.1; seeds/001): after each update,

        w_j <- w_j * min(1, c / ||w_j||_2)

    for every unit j's incoming weight vector w_j: row j of an fc weight, filter j (all input
    channels and taps) of a conv kernel -- i.e. the sub-tensors along dim 0. No host sync.
    """
    for p in regularized_parameters(model, include_all):
        if p.ndim > 1:
            p.copy_(torch.renorm(p, 2, 0, max_norm))
        else:  # a bias or BN vector, only with regularize_all: each entry is its own "unit"
            p.clamp_(-max_norm, max_norm)


def clip_gradients(model: nn.Module, max_norm: float) -> torch.Tensor:
    """Global gradient-norm clipping (Pascanu et al. 2013): if ||g|| > c, g <- g c / ||g||,
    with ||g|| over all parameters together. Returns ||g|| before clipping (a device tensor)."""
    return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm, foreach=None)
