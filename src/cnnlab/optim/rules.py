"""The update rules ``torch.optim`` does not have, written as small ``torch.optim.Optimizer``s.

Each follows its seed literally (the tests compare with a NumPy transcription of the seed's
code). Every group's ``lr`` is read at each step, so :class:`~cnnlab.optim.LRScheduler` and
per-layer multipliers work as for the torch rules.
"""

from __future__ import annotations

import torch


class _SeedRule(torch.optim.Optimizer):
    """Shared ``step``: evaluate the closure (if any), then update each parameter with a grad."""

    def _update(self, p: torch.Tensor, grad: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, self.state[p], group)
        return loss

    def __repr__(self) -> str:
        hyper = {k: v for k, v in self.defaults.items()}
        return f"{type(self).__name__}({hyper})"


class EMAMomentum(_SeedRule):
    """Momentum as exponential smoothing of the gradient (seeds/001, "Momentum method")::

        m = beta * m + (1 - beta) * g;   x -= lr * m        (m starts at 0)

    With a constant rate this is cs231n's ``v = mu v - lr' g`` with ``mu = beta`` and
    ``lr' = lr (1 - beta)``: the smoothing keeps the step size independent of beta. The seed's
    Theano code updates ``x`` and ``m`` simultaneously, so its ``x`` lags one step behind ``m``;
    this follows the slide's stated intent (step along the smoothed gradient, including this
    step's gradient).
    """

    def __init__(self, params, lr: float, beta: float):
        super().__init__(params, dict(lr=lr, beta=beta))

    def _update(self, p, grad, state, group):
        if not state:
            state["m"] = torch.zeros_like(p)
        m = state["m"]
        m.mul_(group["beta"]).add_(grad, alpha=1 - group["beta"])
        p.add_(m, alpha=-group["lr"])


class RMSpropEpsInside(_SeedRule):
    """RMSprop with epsilon inside the square root (seeds/000 listing 2, Lasagne's ``rmsprop``)::

        cache = rho * cache + (1 - rho) * g**2;   x -= lr * g / sqrt(cache + eps)

    torch's RMSprop (and seeds/002) put it outside, ``lr * g / (sqrt(cache) + eps)``; the two
    differ when ``cache`` is comparable to ``eps`` (tiny gradients), where the inside form
    caps the step at ``lr * g / sqrt(eps)``.
    """

    def __init__(self, params, lr: float, rho: float, eps: float):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps))

    def _update(self, p, grad, state, group):
        if not state:
            state["cache"] = torch.zeros_like(p)
        cache = state["cache"]
        cache.mul_(group["rho"]).addcmul_(grad, grad, value=1 - group["rho"])
        p.addcdiv_(grad, cache.add(group["eps"]).sqrt_(), value=-group["lr"])


class AdaptiveGains(_SeedRule):
    """Per-weight adaptive gains (seeds/001, "Adaptive learning rates"; Jacobs 1988)::

        x -= lr * gain * g
        gain += gain_step          where g_prev * g > 0   (successive gradients agree)
        gain *= gain_decay         where g_prev * g < 0   (they disagree)
        gain = clip(gain, gain_min, gain_max)             (the seed's "not implemented" range)

    Gains start at 1. As in the seed, the step uses the gains from before this gradient's
    comparison, then the gains are updated for the next step.
    """

    def __init__(self, params, lr: float, gain_step: float, gain_decay: float,
                 gain_min: float, gain_max: float):
        super().__init__(params, dict(lr=lr, gain_step=gain_step, gain_decay=gain_decay,
                                      gain_min=gain_min, gain_max=gain_max))

    def _update(self, p, grad, state, group):
        if not state:
            state["gain"] = torch.ones_like(p)
        gain = state["gain"]
        p.addcmul_(gain, grad, value=-group["lr"])
        if "prev_grad" in state:
            agree = state["prev_grad"] * grad
            gain.copy_(torch.where(agree > 0, gain + group["gain_step"],
                                   torch.where(agree < 0, gain * group["gain_decay"], gain)))
            gain.clamp_(group["gain_min"], group["gain_max"])
            state["prev_grad"].copy_(grad)
        else:
            state["prev_grad"] = grad.clone()
