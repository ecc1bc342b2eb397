"""Weight initialisation schemes (``model.init``). Biases always start at zero (seeds/001:
"it's OK to initialize biases to zero"); ``model.zero_last`` also zeroes the output layer's
weights (seeds/001: "for the weights going into the final layer, it's OK to initialize to 0").

``fan_in`` = inputs per unit (``C * F * F`` for a conv), ``fan_out`` = ``N * F * F``
(outputs per input, torch's and Lasagne's convention). Random numbers come from torch's
global RNG, which the trainer seeds from ``seed``.

The schemes only call the weight tensor's own in-place methods, so this registry imports no
torch and ``model.init`` is validated without it; :func:`cnnlab.models.factory.initialize`
applies a scheme (under ``torch.no_grad()``) and zeroes the biases.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable

from cnnlab.registry import Registry

if TYPE_CHECKING:
    import torch

#: name -> fn(weight, activation) filling ``weight`` in place (call it under ``torch.no_grad()``);
#: ``activation`` is the token of the nonlinearity the layer feeds ("tanh", "sigmoid",
#: "maxout2", "softmax", None).
INITS: Registry[Callable[[torch.Tensor, str | None], None]] = Registry("init scheme")


def fans(weight: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of an ``N x C`` (fc) or ``N x C x F x F`` (conv) weight."""
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


@INITS.register("small")
def small_random(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ 0.01 N(0, 1)``: small random numbers to break symmetry (seeds/001)."""
    weight.normal_(0.0, 0.01)


@INITS.register("glorot")
def glorot_uniform(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ U(-a, a)``, ``a = sqrt(6 / (fan_in + fan_out))``, times 4 before a sigmoid
    (Glorot & Bengio 2010, as seeds/001 gives it; the Theano LeNet tutorial of seeds/000)."""
    fan_in, fan_out = fans(weight)
    bound = math.sqrt(6.0 / (fan_in + fan_out)) * (4.0 if activation == "sigmoid" else 1.0)
    weight.uniform_(-bound, bound)


@INITS.register("xavier")
def xavier_normal(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ N(0, 1) / sqrt(fan_in)``: unit-variance outputs for linear units (seeds/003,
    ``np.random.randn(fan_in, fan_out) / np.sqrt(fan_in)``)."""
    fan_in, _ = fans(weight)
    weight.normal_(0.0, 1.0 / math.sqrt(fan_in))


@INITS.register("he", "kaiming")
def he_normal(weight: torch.Tensor, activation: str | None) -> None:
    """``w ~ N(0, 1) * sqrt(2 / fan_in)``: ReLU halves the variance, so double it (He et al.
    2015; seeds/003 ``/ np.sqrt(fan_in / 2)``)."""
    fan_in, _ = fans(weight)
    weight.normal_(0.0, math.sqrt(2.0 / fan_in))


@INITS.register("dirac")
def dirac_identity(weight: torch.Tensor, activation: str | None) -> None:
    """airbench94's conv init: torch's default ``w ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    (kaiming-uniform with a = sqrt(5)), then, where the shapes allow, filter i of a conv
    becomes the identity on input channel i (``torch.nn.init.dirac_`` on the first
    min(N, C) filters: w[i] = 0 except w[i, i, F//2, F//2] = 1), an implicit residual
    connection. fc weights (and convs with an even kernel, which have no centre) keep the
    uniform draw."""
    fan_in, _ = fans(weight)
    bound = 1.0 / math.sqrt(fan_in)
    weight.uniform_(-bound, bound)
    if weight.dim() == 4 and weight.shape[2] % 2 == 1 and weight.shape[3] % 2 == 1:
        n = min(weight.shape[0], weight.shape[1])
        weight[:n].zero_()
        centre_h, centre_w = weight.shape[2] // 2, weight.shape[3] // 2
        for i in range(n):
            weight[i, i, centre_h, centre_w] = 1.0


@INITS.register("zero")
def zero(weight: torch.Tensor, activation: str | None) -> None:
    """``w = 0``: the classic mistake of seeds/003 ("every neuron computes the same output, the
    same gradient, the same update"); kept so `cnnlab sanity model.init=zero` can show it."""
    weight.zero_()
