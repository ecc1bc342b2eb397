"""Learning-rate schedules, stepped once per optimizer step.

A schedule is a function of training progress returning a factor on the base learning
rate; :class:`LRScheduler` applies it to every parameter group (which may carry its own
``lr_mult``) and records the rate actually used.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from cnnlab.optim.config import ScheduleConfig
from cnnlab.registry import Registry

#: name -> f(step, total_steps) -> factor on the base learning rate
SCHEDULES: Registry[Callable[[int, int], float]] = Registry("schedule")


@SCHEDULES.register("constant")
def constant(step: int, total: int) -> float:
    """a(t) = a0."""
    return 1.0


@SCHEDULES.register("linear")
def linear(step: int, total: int) -> float:
    """a(t) = a0 (1 - t/T): linear decay to zero at the last step T."""
    return max(0.0, 1.0 - step / max(1, total))


@SCHEDULES.register("cosine")
def cosine(step: int, total: int) -> float:
    """a(t) = a0 (1 + cos(pi t / T)) / 2 (Loshchilov & Hutter 2017, without restarts)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))


class LRScheduler:
    """Sets each group's ``lr = base_lr * lr_mult * warmup(t) * schedule(t)`` before a step."""

    def __init__(self, cfg: ScheduleConfig, optimizer: torch.optim.Optimizer,
                 steps_per_epoch: int, total_steps: int):
        self.cfg = cfg
        self.optimizer = optimizer
        self.factor = SCHEDULES.get(cfg.name)
        self.total_steps = total_steps
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        self.step_count = 0
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self._apply()

    def current_factor(self) -> float:
        t = self.step_count
        warm = min(1.0, (t + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return warm * self.factor(t, self.total_steps)

    def _apply(self) -> None:
        f = self.current_factor()
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * group.get("lr_mult", 1.0) * f

    @property
    def lr(self) -> float:
        """The learning rate of the first (main) parameter group, as used in the last step."""
        return self.optimizer.param_groups[0]["lr"]

    def step_batch(self) -> None:
        self.step_count += 1
        self._apply()

    def step_epoch(self, metrics: dict[str, float]) -> None:
        """Hook for metric-driven schedules; progress-based ones need nothing here."""

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step_count"])
        self._apply()
