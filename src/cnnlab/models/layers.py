"""Layers the seeds use that ``torch.nn`` lacks or spells differently.

Every module here is small and has the equation it computes and where the seeds give it.
Standard layers (``Conv2d``, ``MaxPool2d``, ``BatchNorm2d``, ``ReLU``, ``Tanh``...) are used
directly from ``torch.nn``; :mod:`cnnlab.models.spec` maps spec tokens onto both.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

DROPOUT_MODES = ("inverted", "classic")


class FullyConnected(nn.Linear):
    """``y = W x + b`` on the flattened input volume (an FC layer, seeds/000 appendix A).

    Flattening inside the layer keeps specs in the seeds' notation (``... pool2 fc10``): a
    fully connected layer "is connected to all the numbers in the previous volume".
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.flatten(1))


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013, seeds/000 appendix A.1): ``h_i = max_j z_ij``.

    The preceding linear layer produces ``units * pieces`` features ``z`` (channels for a conv,
    entries for an fc layer); unit ``i`` takes the max over its ``pieces`` consecutive
    features ``z[i*k : (i+1)*k]``. With 2 pieces this generalises ReLU (``w_1 = 0, b_1 = 0``)
    and leaky ReLU, without ReLU's dying units.
    """

    def __init__(self, pieces: int):
        super().__init__()
        if pieces < 1:
            raise ValueError(f"maxout needs at least 1 piece, got {pieces}")
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, features = x.shape[:2]
        grouped = x.reshape(n, features // self.pieces, self.pieces, *x.shape[2:])
        return grouped.amax(dim=2)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


class Dropout(nn.Module):
    """Dropout with an explicit keep probability ``p`` and either scaling convention.

    A mask ``m ~ Bernoulli(p)`` (each unit kept with probability ``p``) is drawn per example
    and unit while training, from torch's global RNG (the trainer re-seeds it per epoch, so
    resumed runs draw the same masks).

    * ``inverted`` (seeds/003, the cs231n notes): train ``y = m * x / p``, test ``y = x``.
    * ``classic`` (Srivastava et al. 2014; seeds/001 "use a uniform mask with the
      probability of the random mask"): train ``y = m * x``, test ``y = p * x``.

    Both keep ``E_m[y_train] = y_test``. They are the same up to a factor ``p`` on the
    activations, which matters once a nonlinearity that is not positively homogeneous
    follows, and changes the effective learning rate of the next layer; seeds/000 s.2.4 found
    the classic form trains its maxout network better.
    """

    def __init__(self, keep: float, mode: str = "inverted"):
        super().__init__()
        if not 0.0 < keep <= 1.0:
            raise ValueError(f"dropout keep probability must be in (0, 1], got {keep}")
        if mode not in DROPOUT_MODES:
            raise ValueError(f"dropout mode must be one of {DROPOUT_MODES}, got {mode!r}")
        self.keep = keep
        self.mode = mode
        # Gradient checking needs the same mask for every perturbed forward pass.
        self.freeze_mask = False
        self._mask: torch.Tensor | None = None

    def _sample_mask(self, x: torch.Tensor) -> torch.Tensor:
        if self.freeze_mask and self._mask is not None and self._mask.shape == x.shape:
            return self._mask.to(dtype=x.dtype)
        mask = torch.empty_like(x).bernoulli_(self.keep)
        self._mask = mask if self.freeze_mask else None
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.keep == 1.0:
            return x
        if self.training:
            mask = self._sample_mask(x)
            return x * mask / self.keep if self.mode == "inverted" else x * mask
        return x if self.mode == "inverted" else x * self.keep

    def extra_repr(self) -> str:
        return f"keep={self.keep}, mode={self.mode}"


@contextmanager
def frozen_dropout_masks(model: nn.Module) -> Iterator[None]:
    """Inside the block every :class:`Dropout` reuses the first mask it draws."""
    drops = [m for m in model.modules() if isinstance(m, Dropout)]
    for d in drops:
        d.freeze_mask, d._mask = True, None
    try:
        yield
    finally:
        for d in drops:
            d.freeze_mask, d._mask = False, None


class Arctan(nn.Module):
    """``f(x) = atan(x)``, ``f'(x) = 1 / (1 + x^2)`` (seeds/002, activation functions table)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan(x)


class Scale(nn.Module):
    """``y = f x`` with a fixed constant f: airbench94's ``Mul(1/9)`` on the logits, which
    keeps the softmax soft at the start whatever the output layer's init."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = float(factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor:g}"


class GlobalAvgPool(nn.Module):
    """``y_c = (1 / HW) sum_{h,w} x_{c,h,w}``: a D x H x W volume becomes a D-vector."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Residual(nn.Module):
    """``y = x + F(x)`` (He et al. 2016): the body must keep the volume's shape."""

    def __init__(self, body: nn.Sequential):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SoftmaxOutput(nn.Identity):
    """Marks the softmax output of the seeds' tables; passes the logits through unchanged.

    cnnlab networks output logits and the loss applies ``log softmax`` (numerically stable);
    ``predict`` applies ``softmax``. The token exists so the seeds' notation parses.
    """


class Recurrent(nn.Module):
    """An LSTM or GRU layer reading an image row by row (seeds/001: recurrent networks with
    LSTM units, trained by backpropagation through time -- here autograd through the loop).

    The input volume ``C x H x W`` is a sequence of ``T = H`` steps whose features are the
    row's ``W x C`` values, ``x_t = vec(volume[:, t, :])``; the state starts at zero.
    LSTM (Hochreiter & Schmidhuber 1997; the forget gate of Gers et al. 2000; torch's gate
    order and biases), with the seed's *write* (i), *keep* (f) and *read* (o) gates::

        i = s(W_ii x_t + b_ii + W_hi h + b_hi)     f = s(W_if x_t + b_if + W_hf h + b_hf)
        g = tanh(W_ig x_t + b_ig + W_hg h + b_hg)  o = s(W_io x_t + b_io + W_ho h + b_ho)
        c <- f * c + i * g                         h <- o * tanh(c)

    GRU (Cho et al. 2014, as ``torch.nn.GRU``)::

        r = s(W_ir x_t + b_ir + W_hr h + b_hr)     z = s(W_iz x_t + b_iz + W_hz h + b_hz)
        n = tanh(W_in x_t + b_in + r * (W_hn h + b_hn))
        h <- (1 - z) * n + z * h

    The weights are stored as ``torch.nn.LSTM``/``GRU`` store theirs (``weight_ih``: gates x
    features, ``weight_hh``: gates x units, gates stacked in the order above) and start as
    theirs, ``U(-1/sqrt(N), 1/sqrt(N))``; the test compares this loop with torch's layer on the
    same weights. Output: the last ``h`` (``N``), or every step's ``h`` as a ``1 x T x N``
    volume (``all_states``).
    """

    GATES = {"lstm": 4, "gru": 3}

    def __init__(self, cell: str, features: int, units: int, all_states: bool = False):
        super().__init__()
        if cell not in self.GATES:
            raise ValueError(f"recurrent cell must be one of {', '.join(self.GATES)}, got {cell!r}")
        self.cell, self.features, self.units, self.all_states = cell, features, units, all_states
        gates = self.GATES[cell] * units
        self.weight_ih = nn.Parameter(torch.empty(gates, features))
        self.weight_hh = nn.Parameter(torch.empty(gates, units))
        self.bias_ih = nn.Parameter(torch.empty(gates))
        self.bias_hh = nn.Parameter(torch.empty(gates))
        bound = units ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, w = x.shape
        steps = x.permute(0, 2, 3, 1).reshape(n, t, w * c)  # row t -> its W x C values
        inputs = torch.addmm(self.bias_ih, steps.reshape(n * t, -1), self.weight_ih.t()).view(n, t, -1)
        h = x.new_zeros(n, self.units)
        cell = x.new_zeros(n, self.units)
        outputs = []
        for step in range(t):  # backpropagation through time: autograd unrolls this loop
            hidden = torch.addmm(self.bias_hh, h, self.weight_hh.t())
            if self.cell == "lstm":
                i, f, g, o = (inputs[:, step] + hidden).chunk(4, dim=1)
                cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(cell)
            else:
                xr, xz, xn = inputs[:, step].chunk(3, dim=1)
                hr, hz, hn = hidden.chunk(3, dim=1)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                h = (1 - z) * torch.tanh(xn + r * hn) + z * h
            if self.all_states:
                outputs.append(h)
        return torch.stack(outputs, dim=1).unsqueeze(1) if self.all_states else h

    def extra_repr(self) -> str:
        return (f"{self.cell}, features={self.features}, units={self.units}, "
                f"states={'all' if self.all_states else 'last'}")
