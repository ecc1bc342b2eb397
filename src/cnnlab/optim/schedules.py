"""Learning-rate schedules, stepped once per optimizer step.

A schedule returns a factor on the base learning rate ``a0 = optim.lr`` as a function of the
step; ``t`` below is training time in epochs (``step / steps_per_epoch``, fractional), ``T``
the whole run. :class:`LRScheduler` multiplies the factor by the linear warm-up and by each
group's ``lr_mult`` and writes ``lr`` into the optimizer's groups before every step.
Metric-driven schedules (plateau) also get the epoch's metrics row through ``step_epoch``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from cnnlab.errors import ConfigError
from cnnlab.optim.monitor import improvement, metric_value, resolve_mode
from cnnlab.registry import Registry

if TYPE_CHECKING:
    from cnnlab.optim.config import ScheduleCommon


class Schedule:
    """Base: ``factor(step)``. The keys a schedule reads and their defaults are its config class
    in :mod:`cnnlab.optim.config` (``cfg``)."""

    def __init__(self, cfg: "ScheduleCommon", steps_per_epoch: int, total_steps: int):
        self.cfg = cfg
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.total_steps = max(1, total_steps)

    def epochs(self, step: int) -> float:
        """t: training time in epochs."""
        return step / self.steps_per_epoch

    def factor(self, step: int) -> float:
        raise NotImplementedError

    def momentum(self, step: int) -> float | None:
        """The momentum to use at ``step``, for schedules that cycle it; None leaves it alone."""
        return None

    def step_epoch(self, row: dict) -> None:
        """Metric-driven schedules react to the epoch's row; progress-driven ones need nothing."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        keys = {k: getattr(self.cfg, k) for k in self.cfg.own_keys()}
        return f"{type(self).__name__}({keys})"


#: name -> Schedule subclass
SCHEDULES: Registry[type[Schedule]] = Registry("schedule")


@SCHEDULES.register("constant")
class Constant(Schedule):
    """a(t) = a0 (use with ``warmup_epochs`` for warm-up only)."""

    def factor(self, step):
        return 1.0


@SCHEDULES.register("linear")
class Linear(Schedule):
    """a(t) = a0 (1 - t/T): linear decay to zero at the last step."""

    def factor(self, step):
        return max(0.0, 1.0 - step / self.total_steps)


@SCHEDULES.register("step")
class Step(Schedule):
    """a(t) = a0 gamma^floor(t / step_epochs) (seeds/000: "divided by 2 after each 20 epochs"
    is gamma 0.5, step_epochs 20; "multiply by 0.7 every 10" is gamma 0.7, step_epochs 10)."""


    def factor(self, step):
        # the tiny slack keeps step_epochs like 0.1 from landing a step late through rounding
        return self.cfg.gamma ** math.floor(self.epochs(step) / self.cfg.step_epochs + 1e-9)


@SCHEDULES.register("exponential", "exp")
class Exponential(Schedule):
    """a(t) = a0 exp(-k t) (seeds/002, "exponential decay"), t in epochs."""


    def factor(self, step):
        return math.exp(-self.cfg.k * self.epochs(step))


@SCHEDULES.register("inverse_time", "1/t")
class InverseTime(Schedule):
    """a(t) = a0 / (1 + k t) (seeds/002, "1/t decay"), t in epochs."""


    def factor(self, step):
        return 1.0 / (1.0 + self.cfg.k * self.epochs(step))


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """a(t) = a0 (1 + cos(pi t / T)) / 2 (Loshchilov & Hutter 2017, one period, no restarts)."""

    def factor(self, step):
        return 0.5 * (1.0 + math.cos(math.pi * min(step, self.total_steps) / self.total_steps))


@SCHEDULES.register("onecycle")
class OneCycle(Schedule):
    """One-cycle policy (Smith & Topin 2018), cosine annealing, as torch's ``OneCycleLR``:

        rise   a0/d -> a0           over the first pct_start of the steps
        fall   a0 -> a0/(d f)       over the rest           (d = div_factor, f = final_div_factor)

    each by ``end + (start - end)(1 + cos(pi p))/2`` with p the phase's progress. With
    ``momentum_cycle = [hi, lo]`` the momentum moves the other way (Smith 2018, s.4.3): hi -> lo
    while the rate rises, lo -> hi while it falls (torch's ``cycle_momentum``, whose default is
    [0.95, 0.85]); left null, the optimizer's own momentum is kept.
    """


    def _phase(self, step: int) -> tuple[bool, float]:
        """(rising?, progress p in [0, 1] through that phase)."""
        peak_step = float(self.cfg.pct_start * self.total_steps) - 1  # torch's phase boundary
        last_step = self.total_steps - 1
        step = min(step, last_step)
        if step <= peak_step:
            return True, step / peak_step if peak_step > 0 else 1.0
        return False, (step - peak_step) / max(last_step - peak_step, 1e-12)

    @staticmethod
    def _anneal(start: float, end: float, p: float) -> float:
        return end + (start - end) / 2.0 * (math.cos(math.pi * p) + 1)

    def factor(self, step):
        start = 1.0 / self.cfg.div_factor
        end = start / self.cfg.final_div_factor
        rising, p = self._phase(step)
        return self._anneal(start, 1.0, p) if rising else self._anneal(1.0, end, p)

    def momentum(self, step):
        if self.cfg.momentum_cycle is None:
            return None
        hi, lo = self.cfg.momentum_cycle
        rising, p = self._phase(step)
        return self._anneal(hi, lo, p) if rising else self._anneal(lo, hi, p)


@SCHEDULES.register("plateau")
class Plateau(Schedule):
    """Reduce on plateau (seeds/002: halve the rate "whenever the validation accuracy tops off"):

        after each epoch, if the monitored metric has not improved by more than ``threshold``
        for more than ``patience`` epochs:  a <- max(a gamma, a0 min_factor), then wait
        ``cooldown`` epochs before counting again.

    Same rule as torch's ``ReduceLROnPlateau(threshold_mode="abs")``.
    """


    def __init__(self, cfg, steps_per_epoch, total_steps):
        super().__init__(cfg, steps_per_epoch, total_steps)
        self.mode = resolve_mode(cfg.monitor, cfg.mode, "schedule.monitor")
        self.scale = 1.0
        self.best: float | None = None
        self.bad_epochs = 0
        self.cooldown_left = 0

    def factor(self, step):
        return self.scale

    def step_epoch(self, row):
        value = metric_value(row, self.cfg.monitor, "schedule.monitor")
        if improvement(value, self.best, self.mode) > self.cfg.threshold:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.bad_epochs = 0
        if self.bad_epochs > self.cfg.patience:
            self.scale = max(self.scale * self.cfg.gamma, self.cfg.min_factor)
            self.cooldown_left, self.bad_epochs = self.cfg.cooldown, 0

    def state_dict(self):
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs,
                "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state):
        self.scale, self.best = float(state["scale"]), state["best"]
        self.bad_epochs, self.cooldown_left = int(state["bad_epochs"]), int(state["cooldown_left"])


def _set_momentum(group: dict, value: float) -> bool:
    """Write ``value`` where the group's rule keeps its momentum (Adam's beta1, SGD's momentum,
    EMA momentum's beta), as torch's ``OneCycleLR`` does; False when it keeps none."""
    if "betas" in group:
        group["betas"] = (value, *group["betas"][1:])
    elif "momentum" in group:
        group["momentum"] = value
    elif "beta" in group:
        group["beta"] = value
    else:
        return False
    return True


class LRScheduler:
    """Sets each group's ``lr = base_lr * lr_mult * warmup(t) * schedule(t)`` before a step.

    Linear warm-up (Goyal et al. 2017): ``warmup(step) = min(1, (step + 1) / W)`` with
    ``W = warmup_epochs * steps_per_epoch``. ``lr`` is the rate of the first (multiplier-1)
    group as used by the last optimizer step, which is what the trainer logs each epoch.
    """

    def __init__(self, cfg: "ScheduleCommon", optimizer: torch.optim.Optimizer,
                 steps_per_epoch: int, total_steps: int):
        self.cfg = cfg
        self.optimizer = optimizer
        self.schedule = SCHEDULES.get(cfg.name)(cfg, steps_per_epoch, total_steps)
        self.total_steps = total_steps
        self.warmup_steps = round(cfg.warmup_epochs * steps_per_epoch)
        self.step_count = 0
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])  # param_groups() sets it; plain groups: lr is the base
        momentum = self.schedule.momentum(0)
        if momentum is not None and not all(_set_momentum(g, momentum) for g in optimizer.param_groups):
            raise ConfigError(f"schedule.momentum_cycle: the optimizer ({type(optimizer).__name__}) has "
                              "no momentum to cycle; use sgd, ema_momentum, adam or rmsprop (eps_inside_sqrt "
                              "false), or set schedule.momentum_cycle to null")
        self._apply()
        self._used_lr = self._group_lr()

    def current_factor(self) -> float:
        t = self.step_count
        warm = min(1.0, (t + 1) / self.warmup_steps) if self.warmup_steps else 1.0
        return warm * self.schedule.factor(t)

    def _apply(self) -> None:
        f = self.current_factor()
        momentum = self.schedule.momentum(self.step_count)
        for group in self.optimizer.param_groups:
            group["lr"] = group["base_lr"] * group.get("lr_mult", 1.0) * f
            if momentum is not None:
                _set_momentum(group, momentum)

    def _group_lr(self) -> float:
        group = self.optimizer.param_groups[0]
        return group["lr"] / group.get("lr_mult", 1.0)

    @property
    def lr(self) -> float:
        """The base learning rate (times schedule and warm-up) used by the last optimizer step."""
        return self._used_lr

    def step_batch(self) -> None:
        """Call after each optimizer step: records the rate it used, sets the next one."""
        self._used_lr = self._group_lr()
        self.step_count += 1
        self._apply()

    def step_epoch(self, metrics: dict[str, float]) -> None:
        """Call after each epoch with its metrics row (metric-driven schedules react here)."""
        self.schedule.step_epoch(metrics)
        self._apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "used_lr": self._used_lr, "name": self.cfg.name,
                "schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Continue at the saved step. A schedule switched on resume starts its own state afresh
        (a plateau's counters mean nothing to a cosine), at the step reached."""
        self.step_count = int(state["step_count"])
        if state.get("name", self.cfg.name) == self.cfg.name:
            self.schedule.load_state_dict(state.get("schedule", {}))
        self._apply()
        self._used_lr = float(state.get("used_lr", self._group_lr()))

    def __repr__(self) -> str:
        return f"LRScheduler({self.schedule!r}, warmup_steps={self.warmup_steps}, step={self.step_count})"
