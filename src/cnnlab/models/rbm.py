"""Restricted Boltzmann machines (seeds/001): energy, Gibbs sampling, the gradient estimates
of contrastive divergence (CD-k) and persistent CD (PCD), and their monitors.

Energy and distribution (binary visible ``v`` and hidden ``h``)::

    E(v, h) = - v^T W h - b^T v - c^T h          P(v, h) = exp(-E(v, h)) / Z

(seeds/001 writes ``P(V, H) ~ exp(-v^T W h - v^T b_v - h^T b_h)``; the gradient it gives,
``<v h>_data - <v h>_model``, holds for ``exp(+v^T W h ...)``, i.e. for the energy above --
the usual convention, e.g. Hinton's "practical guide" (2010) -- so that is the sign used.)
The graph is bipartite, so both conditionals factorise::

    P(h_j = 1 | v) = s(c_j + sum_i v_i W_ij)     P(v_i = 1 | h) = s(b_i + sum_j W_ij h_j)

Gaussian-Bernoulli visible units (real-valued input, unit variance; Hinton 2010 s.13.2)::

    E(v, h) = |v - b|^2 / 2 - v^T W h - c^T h    v | h ~ N(b + W h, 1)

The log-likelihood gradient of one example (seeds/001)::

    d log P(v) / d W_ij = <v_i h_j>_data - <v_i h_j>_model
    d log P(v) / d b_i  = <v_i>_data - <v_i>_model,   d log P(v) / d c_j = <h_j>_data - <h_j>_model

The data term uses ``P(h | v)`` in place of a sample of ``h`` (its expectation; less noise).
The model term is intractable; it is estimated from Gibbs chains ``v -> h -> v -> ...``:

- **CD-k** (Hinton 2002): each chain starts at a training example and takes ``k`` steps
  (seeds/001: "one MCMC step; as training approaches the end, increase ... to 2-5");
- **PCD** (Tieleman 2008): a fixed set of persistent particles (~100) each take ``k`` steps
  from where they were after the previous update.

The model term is ``v_k (x) P(h | v_k)`` averaged over the chains, with ``v_k`` the chains'
visible *samples*. Equivalently, the estimate is ``-(dF(v_0) - dF(v_k))`` with the free
energy ``F(v) = -log sum_h exp(-E(v, h))``.

Monitors (the RBM's likelihood itself needs ``Z``):

- **reconstruction error**: ``sum_i (v_i - P(v_i = 1 | h = P(h | v)))^2`` per example (the
  mean-field reconstruction; for Gaussian units the mean ``b + W P(h | v)``);
- **pseudo-likelihood** (binary visible only): ``log PL(v) = sum_i log P(v_i | v_-i)``,
  estimated per example from one visible unit ``i`` drawn at random,
  ``n_v * log s(F(v with bit i flipped) - F(v))`` (Besag 1975; the Theano deep-learning
  tutorial's estimator), on ``v`` rounded to {0, 1}.

Weight layout: ``W`` is ``n_visible x n_hidden``; a fully connected layer ``y = A x + a`` that
takes the RBM's visible vector as input and gives ``P(h | v)`` after a sigmoid has
``A = W^T``, ``a = c`` (:mod:`cnnlab.train.pretrain` uses this).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

VISIBLE_UNITS = ("binary", "gaussian")


@dataclass
class RBM:
    """The parameters of one RBM, as plain tensors (updated in place by :func:`sgd_update`)."""

    W: torch.Tensor  # n_visible x n_hidden
    b: torch.Tensor  # visible biases
    c: torch.Tensor  # hidden biases
    visible: str = "binary"

    def __post_init__(self):
        if self.visible not in VISIBLE_UNITS:
            raise ValueError(f"visible units must be one of {VISIBLE_UNITS}, got {self.visible!r}")

    @classmethod
    def zeros(cls, n_visible: int, n_hidden: int, visible: str = "binary", dtype=torch.float32) -> "RBM":
        return cls(torch.zeros(n_visible, n_hidden, dtype=dtype), torch.zeros(n_visible, dtype=dtype),
                   torch.zeros(n_hidden, dtype=dtype), visible)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.W.shape)

    def __repr__(self) -> str:
        return f"RBM({self.shape[0]} {self.visible} visible x {self.shape[1]} binary hidden)"

    # -- conditionals and sampling ------------------------------------------------------------
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """``P(h_j = 1 | v) = s(c_j + sum_i v_i W_ij)``."""
        return torch.sigmoid(torch.addmm(self.c, v, self.W))

    def visible_mean(self, h: torch.Tensor) -> torch.Tensor:
        """``E[v | h]``: ``s(b + W h)`` (binary) or ``b + W h`` (Gaussian)."""
        a = torch.addmm(self.b, h, self.W.t())
        return torch.sigmoid(a) if self.visible == "binary" else a

    def sample_visible(self, h: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        mean = self.visible_mean(h)
        if self.visible == "binary":
            return torch.bernoulli(mean, generator=generator)
        return mean + torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)

    def gibbs(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``steps`` rounds of ``h ~ P(h | v)``, ``v ~ P(v | h)`` from ``v``; the last ``v``."""
        for _ in range(steps):
            h = torch.bernoulli(self.hidden_probs(v), generator=generator)
            v = self.sample_visible(h, generator)
        return v

    # -- energies and gradients ----------------------------------------------------------------
    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """``F(v) = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + v^T W_j)`` (binary;
        Gaussian: ``|v - b|^2 / 2`` in place of ``-b^T v``), one value per row of ``v``."""
        visible = -(v @ self.b) if self.visible == "binary" else 0.5 * ((v - self.b) ** 2).sum(1)
        return visible - F.softplus(torch.addmm(self.c, v, self.W)).sum(1)

    def statistics(self, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(<v h^T>, <v>, <h>)`` over the rows of ``v``, with ``h = P(h | v)``; for Gaussian
        units ``<v>`` is ``<v - b>`` (the bias gradient of ``|v - b|^2 / 2``)."""
        h = self.hidden_probs(v)
        vb = v if self.visible == "binary" else v - self.b
        return v.t() @ h / len(v), vb.mean(0), h.mean(0)

    def gradient(self, v_data: torch.Tensor, v_model: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The seed's estimate ``<v h>_data - <v h>_model`` (and the biases' likewise) from data
        rows and model samples (the chains' end states); ascent direction of ``log P``."""
        return tuple(d - m for d, m in zip(self.statistics(v_data), self.statistics(v_model)))

    def cd_gradient(self, v: torch.Tensor, k: int, generator: torch.Generator | None = None):
        """CD-k: chains start at the data ``v`` and take ``k`` Gibbs steps."""
        return self.gradient(v, self.gibbs(v, k, generator))

    def pcd_gradient(self, v: torch.Tensor, particles: torch.Tensor, k: int,
                     generator: torch.Generator | None = None):
        """PCD: the ``particles`` take ``k`` steps from where they are; returns the gradient and
        the particles' new states (keep them for the next update)."""
        particles = self.gibbs(particles, k, generator)
        return self.gradient(v, particles), particles

    # -- monitors --------------------------------------------------------------------------------
    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> float:
        """Mean over examples of ``sum_i (v_i - E[v_i | h = P(h | v)])^2``."""
        return float(((v - self.visible_mean(self.hidden_probs(v))) ** 2).sum(1).mean())

    @torch.no_grad()
    def pseudo_likelihood(self, v: torch.Tensor, generator: torch.Generator | None = None) -> float | None:
        """Mean stochastic ``log PL`` per example (binary visible only; None otherwise)."""
        if self.visible != "binary":
            return None
        v = (v > 0.5).to(self.W.dtype)
        bit = torch.randint(v.shape[1], (len(v),), generator=generator, device=v.device)
        flipped = v.clone()
        rows = torch.arange(len(v), device=v.device)
        flipped[rows, bit] = 1 - flipped[rows, bit]
        return float(v.shape[1] * F.logsigmoid(self.free_energy(flipped) - self.free_energy(v)).mean())


def sgd_update(rbm: RBM, grads: tuple[torch.Tensor, ...], velocity: list[torch.Tensor], lr: float,
               momentum: float = 0.0, l2: float = 0.0) -> None:
    """Gradient *ascent* on ``log P`` with momentum (Hinton 2010 s.9) and L2 on ``W`` only::

        u <- momentum * u + lr * (grad - l2 * W)   (biases: without the l2 term);   theta <- theta + u
    """
    for i, (param, grad) in enumerate(zip((rbm.W, rbm.b, rbm.c), grads)):
        step = grad - l2 * param if i == 0 and l2 else grad
        velocity[i].mul_(momentum).add_(step, alpha=lr)
        param.add_(velocity[i])


def k_at(schedule: int | dict[int, int], epoch: int) -> int:
    """Gibbs steps for ``epoch`` (1-based): a constant, or ``{from_epoch: k}`` (the entry with
    the largest ``from_epoch <= epoch``; 1 before the first)."""
    if isinstance(schedule, int):
        return schedule
    started = [e for e in schedule if int(e) <= epoch]
    return int(schedule[max(started, key=int)]) if started else 1


def all_states(n: int, dtype=torch.float64) -> torch.Tensor:
    """Every binary vector of length ``n`` (``2^n x n``; row ``r`` is ``r`` in binary)."""
    r = torch.arange(2 ** n)
    return ((r[:, None] >> torch.arange(n - 1, -1, -1)) & 1).to(dtype)


def exact_log_likelihood(rbm: RBM, v: torch.Tensor) -> torch.Tensor:
    """``mean log P(v)`` by enumerating every hidden and visible state (tiny binary RBMs only):
    ``log P(v) = -F(v) - log Z``, ``log Z = logsumexp_v -F(v)`` over all ``2^{n_v}`` vectors."""
    n_visible = rbm.shape[0]
    if rbm.visible != "binary" or n_visible > 20:
        raise ValueError("exact likelihoods need binary visible units and at most 20 of them")
    log_z = torch.logsumexp(-rbm.free_energy(all_states(n_visible, rbm.W.dtype)), 0)
    return (-rbm.free_energy(v) - log_z).mean()


def model_marginal(rbm: RBM) -> torch.Tensor:
    """``P(v)`` for every visible state (:func:`all_states` order), by enumeration."""
    states = all_states(rbm.shape[0], rbm.W.dtype)
    return torch.softmax(-rbm.free_energy(states), 0)


def exact_gradient(rbm: RBM, v: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The seed's gradient with the model term computed exactly: ``<.>_model`` weighs every
    visible state by :func:`model_marginal` (tiny binary RBMs only)."""
    states = all_states(rbm.shape[0], rbm.W.dtype)
    p = model_marginal(rbm)
    h = rbm.hidden_probs(states)
    model = ((states * p[:, None]).t() @ h, p @ states, p @ h)
    return tuple(d - m for d, m in zip(rbm.statistics(v), model))
