"""Lookahead averaging of the weights, airbench94's (``train.lookahead``), as a trainer callback.

From epoch ``start_epochs`` on, every ``every`` optimizer steps (counted over the whole run,
``t``), an exponential moving average of the weights is updated and copied back into the
network (Zhang et al. 2019's Lookahead idea, airbench94's ``LookaheadState``)::

    rho_t = (decay_base ** every) * (t / T) ** decay_pow          T = total steps of the run
    ema  <- rho_t ema + (1 - rho_t) w          (torch.lerp(ema, w, 1 - rho_t))
    w    <- ema

The first such step only starts the average (``ema = w``). At the end of every epoch (and of
the run) the weights are set to the average a last time (``w <- ema``, airbench's
``update(decay=1.0)``), dropping the steps since the last averaging. Every floating-point
entry of the state dict takes part: parameters and batch-norm running statistics.

**Which weights are evaluated.** The network's own weights *are* the average after each epoch,
so validation, ``last.pt``, ``best.pt``, the test error and ``cnnlab evaluate`` all use the
averaged weights; no second copy is swapped in. Resume is exact: a checkpoint is written
after the epoch-end copy, when ``ema == w`` bitwise, so the callback stores only whether
averaging has started and rebuilds ``ema`` from the restored weights.
"""

from __future__ import annotations

import torch

from cnnlab.train.callbacks import CALLBACKS, Callback
from cnnlab.train.config import LookaheadConfig


def lookahead_decay(cfg: LookaheadConfig, step: int, total_steps: int) -> float:
    """rho_t of the module docstring."""
    return cfg.decay_base ** cfg.every * (step / total_steps) ** cfg.decay_pow


class Lookahead(Callback):
    """The callback; runs on every DDP rank (it changes the weights, alike everywhere)."""

    all_ranks = True

    def __init__(self, cfg: LookaheadConfig):
        self.cfg = cfg
        self.started = False
        self.ema: dict[str, torch.Tensor] | None = None

    @staticmethod
    def _floats(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {k: v for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, decay: float) -> None:
        """ema <- decay ema + (1 - decay) w, then w <- ema (airbench94's LookaheadState.update)."""
        for name, w in self._floats(model).items():
            ema = self.ema[name]
            ema.lerp_(w, 1 - decay)
            w.copy_(ema)

    def on_train_start(self, trainer) -> None:
        if self.started and self.ema is None:  # resumed: the checkpoint's weights are the average
            self.ema = {k: v.clone() for k, v in self._floats(trainer.model).items()}

    @torch.no_grad()
    def on_step_end(self, trainer) -> None:
        step, model = trainer.step, trainer.model
        if trainer.epoch >= self.cfg.start_epochs and step % self.cfg.every == 0:
            if not self.started:
                self.started = True
                self.ema = {k: v.clone() for k, v in self._floats(model).items()}
            else:
                self.update(model, lookahead_decay(self.cfg, step, trainer.total_steps))
        if self.started and (step % trainer.steps_per_epoch == 0 or step == trainer.total_steps):
            self.update(model, 1.0)  # epoch end: the network takes the average (before validation)

    def state_dict(self) -> dict:
        return {"started": self.started}

    def load_state_dict(self, state: dict) -> None:
        self.started, self.ema = bool(state["started"]), None

    def __repr__(self) -> str:
        return f"Lookahead(every={self.cfg.every}, start_epochs={self.cfg.start_epochs}, started={self.started})"


@CALLBACKS.register("lookahead")
def lookahead(cfg) -> Lookahead | None:
    """Factory: the callback when ``train.lookahead.enabled``."""
    return Lookahead(cfg.train.lookahead) if cfg.train.lookahead.enabled else None
