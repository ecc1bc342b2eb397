"""Update rules: a registry from names to :class:`UpdateRule` builders. Each rule's keys and
their defaults are its config class in :mod:`cnnlab.optim.config` (torch-free); a test checks
that the two list the same names. ``torch.optim`` is used where it *is* the rule; the rest live
in :mod:`cnnlab.optim.rules`. Notation: ``g`` gradient, ``x`` parameter, ``t`` step (from 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from cnnlab.optim.rules import AdaptiveGains, EMAMomentum, RMSpropEpsInside
from cnnlab.registry import Registry

if TYPE_CHECKING:
    from cnnlab.optim.config import OptimCommon


@dataclass(frozen=True)
class UpdateRule:
    """``build(param_groups, cfg) -> Optimizer``; ``cfg`` is the rule's own config class."""

    build: Callable[[list[dict], "OptimCommon"], torch.optim.Optimizer]
    needs_closure: bool = False  # step(closure) re-evaluates the loss (L-BFGS)

    def __call__(self, param_groups: list[dict], cfg: "OptimCommon") -> torch.optim.Optimizer:
        optimizer = self.build(param_groups, cfg)
        optimizer.needs_closure = self.needs_closure
        return optimizer

    @property
    def doc(self) -> str:
        return (self.build.__doc__ or "").strip().splitlines()[0]


OPTIMIZERS: Registry[UpdateRule] = Registry("optimizer")


def rule(name: str, *aliases: str, needs_closure: bool = False):
    """Register ``build`` under ``name`` (its keys and defaults: the config class of that name)."""
    def add(build):
        OPTIMIZERS.register(name, *aliases)(UpdateRule(build, needs_closure))
        return build
    return add


@rule("sgd")
def sgd(groups, cfg):
    """SGD with (Nesterov) momentum, cs231n convention (seeds/002, seeds/003).

        x -= lr g                                    (momentum = 0)
        v = mu v - lr g;  x += v                     (momentum mu)
        v_prev = v;  v = mu v - lr g;  x += -mu v_prev + (1 + mu) v     (nesterov)

    torch's SGD keeps ``b = -v / lr`` (``b = mu b + g; x -= lr b``), the same iterates while lr is
    constant; when a schedule changes lr, torch rescales the whole velocity at once.
    """
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum,
                           nesterov=bool(cfg.nesterov) and cfg.momentum > 0)


@rule("ema_momentum")
def ema_momentum(groups, cfg):
    """Momentum as gradient smoothing (seeds/001): m = beta m + (1 - beta) g;  x -= lr m."""
    return EMAMomentum(groups, lr=cfg.lr, beta=cfg.momentum)


@rule("adagrad")
def adagrad(groups, cfg):
    """Adagrad (Duchi et al. 2011; seeds/002): cache += g^2;  x -= lr g / (sqrt(cache) + eps)."""
    return torch.optim.Adagrad(groups, lr=cfg.lr, eps=cfg.eps)


@rule("rmsprop")
def rmsprop(groups, cfg):
    """RMSprop (Hinton, lecture 6e): cache = rho cache + (1 - rho) g^2, then

        x -= lr g / (sqrt(cache) + eps)     eps_inside_sqrt: false (seeds/002; torch.optim.RMSprop)
        x -= lr g / sqrt(cache + eps)       eps_inside_sqrt: true  (seeds/000 listing 2)
    """
    if cfg.eps_inside_sqrt:
        return RMSpropEpsInside(groups, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)
    return torch.optim.RMSprop(groups, lr=cfg.lr, alpha=cfg.rho, eps=cfg.eps)


@rule("adadelta")
def adadelta(groups, cfg):
    """Adadelta (Zeiler 2012, Algorithm 1; seeds/000 B.2), with an optional factor lr:

        E[g^2] = rho E[g^2] + (1 - rho) g^2
        dx = -sqrt(E[dx^2] + eps) / sqrt(E[g^2] + eps) * g
        E[dx^2] = rho E[dx^2] + (1 - rho) dx^2;   x += lr dx

    Zeiler's rule has no learning rate (lr = 1, the default). seeds/000 found that a hand-set
    lr (0.01) fights the adaptation and made the cost rise after a while.
    """
    return torch.optim.Adadelta(groups, lr=cfg.lr, rho=cfg.rho, eps=cfg.eps)


@rule("adam")
def adam(groups, cfg):
    """Adam with bias correction (Kingma & Ba 2015; seeds/003):

        m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        x -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """
    return torch.optim.Adam(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


@rule("adaptive_gains")
def adaptive_gains(groups, cfg):
    """Per-weight gains (seeds/001): x -= lr gain g; gain += 0.05 on sign agreement, *= 0.95 else.

    The gains are clipped to [gain_min, gain_max]; the default [0.1, 10] is the range Hinton's
    lecture 6d suggests (the seed left the range unimplemented).
    """
    return AdaptiveGains(groups, lr=cfg.lr, gain_step=cfg.gain_step, gain_decay=cfg.gain_decay,
                         gain_min=cfg.gain_min, gain_max=cfg.gain_max)


@rule("lbfgs", needs_closure=True)
def lbfgs(groups, cfg):
    """L-BFGS (Nocedal 1980; seeds/003: "if you can afford the full batch updates, try LBFGS").

    Each optimizer step runs up to ``lbfgs_max_iter`` quasi-Newton iterations on one batch,
    re-evaluating the loss through a closure; meant for full-batch training
    (``train.batch_size`` >= the training set). torch.optim.LBFGS keeps one parameter group.
    """
    params = [p for g in groups for p in g["params"]]
    names = [n for g in groups for n in g.get("names", [])]
    return torch.optim.LBFGS(
        [{"params": params, "names": names, "lr_mult": 1.0}], lr=cfg.lr, max_iter=cfg.lbfgs_max_iter,
        history_size=cfg.lbfgs_history, line_search_fn="strong_wolfe" if cfg.lbfgs_line_search else None)
