"""Weight initialisation schemes (``model.init``). Biases always start at zero (seeds/001:
"it's OK to initialize biases to zero"); ``model.zero_last`` also zeroes the output layer's
weights (seeds/001: "for the weights going into the final layer, it's OK to initialize to 0").

``fan_in`` = inputs per unit (``C * F * F`` for a conv), ``fan_out`` = ``N * F * F``
(outputs per input, torch's and Lasagne's convention). Random numbers come from torch's
global RNG, which the trainer seeds from ``seed``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from cnnlab.registry import Registry

#: name -> fn(weight, activation) filling ``weight`` in place; ``activation`` is the token of
#: the nonlinearity the layer feeds ("tanh", "sigmoid", "maxout2", "softmax", None).
INITS: Registry[Callable[[torch.Tensor, str | None], None]] = Registry("init scheme")


def fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@INITS.register("small")
def small_random(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ 0.01 N(0, 1)``: small random numbers to break symmetry (seeds/001)."""
    with torch.no_grad():
        weight.normal_(0.0, 0.01)


@INITS.register("glorot")
def glorot_uniform(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, times 4 before a sigmoid
    (Glorot & Bengio 2010, as seeds/001 gives it; the Theano LeNet tutorial of seeds/000)."""
    fan_in, fan_out = fans(weight)
    bound = math.sqrt(6.0 / (fan_in + fan_out)) * (4.0 if activation == "sigmoid" else 1.0)
    with torch.no_grad():
        weight.uniform_(-bound, bound)


@INITS.register("xavier")
def xavier_normal(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ N(0, 1) / sqrt(fan_in)``: unit-variance outputs for linear units (seeds/003,
    ``np.random.randn(fan_in, fan_out) / np.sqrt(fan_in)``)."""
    fan_in, _ = fans(weight)
    with torch.no_grad():
        weight.normal_(0.0, 1.0 / math.sqrt(fan_in))


@INITS.register("he", "kaiming")
def he_normal(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ N(0, 1) * sqrt(2 / fan_in)``: ReLU halves the variance, so double it (He et al.
    2015; seeds/003 ``/ np.sqrt(fan_in / 2)``)."""
    fan_in, _ = fans(weight)
    with torch.no_grad():
        weight.normal_(0.0, math.sqrt(2.0 / fan_in))


@INITS.register("zero")
def zero(weight: torch.Tensor, activation: str | None) -> None:
    """``w = 0``: the classic mistake of seeds/003 ("every neuron computes the same output, the
    same gradient, the same update"); kept so `cnnlab sanity model.init=zero` can show it."""
    with torch.no_grad():
        weight.zero_()


def initialize(layers: list, scheme: str, zero_last: bool = False) -> None:
    """Initialise the linear layers (:class:`~cnnlab.models.build.LayerInfo` of conv/fc) of a
    network: weights by ``scheme``, biases zero, and the last layer all zero if ``zero_last``."""
    fill = INITS.get(scheme)
    for info in layers:
        fill(info.module.weight, info.activation)
        nn.init.zeros_(info.module.bias)
    if zero_last and layers:
        nn.init.zeros_(layers[-1].module.weight)
