"""The ``optim:`` and ``schedule:`` sections: one small config class per update rule and per
schedule, chosen by ``name`` (a pydantic discriminated union). No torch here, so a config is
validated without importing it.

Keys fall in two kinds:

- **common keys**, on :class:`OptimCommon` / :class:`ScheduleCommon`: ``lr`` and the
  regularisers (``l2``, ``l1``, ``regularize_all``, ``max_norm``, ``clip_grad_norm``,
  ``label_smoothing``, ``layer_lr``) for every rule; ``warmup_epochs`` for every schedule;
- **the rule's own keys** (``momentum``, ``rho``, ``beta1``...), with that rule's documented
  defaults, so ``optim: adadelta`` means Zeiler's Adadelta with ``lr: 1.0``. Setting a key the
  chosen rule does not read is an error naming the keys it does read.

``lr`` is common, but its *default* belongs to the rule (Adadelta's 1.0 is not SGD's 0.05).
Switching the rule of a config (``optim.name=adam`` or ``optim=adam``) therefore resets ``lr``
and the rule's own keys to the new rule's defaults and keeps every other common key
(:func:`cnnlab.config.merge`); :data:`OPTIM_SWITCH_KEYS` says which.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import Field, TypeAdapter, field_validator, model_validator

from cnnlab.configbase import Section

Probability = Annotated[float, Field(ge=0, lt=1)]


class OptimCommon(Section):
    """Keys every update rule reads: the base rate and the regularisers applied with it."""

    KIND: ClassVar[str] = "optimizer"

    name: str = Field("sgd", description="update rule (see `cnnlab list optimizers`)")
    lr: float = Field(0.05, gt=0, description="base learning rate; each rule has its own default")
    l2: float = Field(0.0, ge=0, description="L2 strength lambda in (1/2) lambda sum w^2 (weights only)")
    l1: float = Field(0.0, ge=0, description="L1 strength lambda in lambda sum |w| (weights only); "
                      "l1 and l2 together = elastic net")
    regularize_all: bool = Field(False, description="also penalise (and max-norm) biases and "
                                 "batch-norm parameters; by default only weights (ndim > 1)")
    max_norm: float | None = Field(None, gt=0, description="max-norm c: after every step, rescale each "
                                   "unit's incoming weight vector to ||w||_2 <= c")
    clip_grad_norm: float | None = Field(None, gt=0, description="rescale the gradient so that its "
                                         "global L2 norm is at most this, before the step")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="target = (1-eps) one-hot + eps/K")
    layer_lr: dict[str | int, float] = Field(
        default_factory=dict, description="learning-rate multipliers by layer name (or glob, or "
        "prefix such as 'features') or layer index (0 = first layer with parameters, -1 = last)")

    @field_validator("layer_lr")
    @classmethod
    def _positive_multipliers(cls, value: dict) -> dict:
        bad = {k: v for k, v in value.items() if not v > 0}
        if bad:
            raise ValueError(f"layer_lr multipliers must be > 0, got {bad}")
        return value

    @classmethod
    def own_keys(cls) -> list[str]:
        """The keys this rule reads beyond the common ones."""
        return [k for k in cls.model_fields if k not in OptimCommon.model_fields and k != "name"]


class SGD(OptimCommon):
    """SGD with (Nesterov) momentum, cs231n convention (seeds/002, seeds/003), with optional
    decoupled weight decay and airbench94's per-1024-examples statement of lr and decay
    (:func:`cnnlab.optim.setup.step_rates`)."""

    name: Literal["sgd"] = "sgd"
    lr: float = Field(0.05, gt=0, description="base learning rate (per 1024 examples with per_1024)")
    momentum: float = Field(0.9, ge=0, lt=1, description="mu in v = mu v - lr g (0: plain SGD)")
    nesterov: bool = Field(True, description="Nesterov momentum")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay: each step adds wd x to "
                                "the gradient buffer scaled so that the decay is wd x schedule whatever "
                                "the group's lr (layer_lr multipliers do not scale it); on the parameters "
                                "l2 acts on (all with regularize_all)")
    per_1024: bool = Field(False, description="lr and weight_decay are stated per 1024 examples "
                           "(airbench94): the step uses k lr and k wd, k = (batch/1024) / (1 + 1/(1 - momentum))")


class EMAMomentum(OptimCommon):
    """Momentum as gradient smoothing (seeds/001): m = beta m + (1 - beta) g; x -= lr m."""

    name: Literal["ema_momentum"] = "ema_momentum"
    lr: float = Field(0.1, gt=0, description="base learning rate")
    momentum: float = Field(0.8, ge=0, lt=1, description="beta in m = beta m + (1-beta) g")


class Adagrad(OptimCommon):
    """Adagrad (Duchi et al. 2011; seeds/002)."""

    name: Literal["adagrad"] = "adagrad"
    lr: float = Field(0.01, gt=0, description="base learning rate")
    eps: float = Field(1e-7, gt=0, description="epsilon in lr g / (sqrt(cache) + eps)")


class RMSprop(OptimCommon):
    """RMSprop (Hinton, lecture 6e)."""

    name: Literal["rmsprop"] = "rmsprop"
    lr: float = Field(1e-3, gt=0, description="base learning rate")
    rho: float = Field(0.9, gt=0, lt=1, description="decay rate of the running average of g^2")
    eps: float = Field(1e-8, gt=0, description="epsilon")
    eps_inside_sqrt: bool = Field(False, description="lr g / sqrt(cache + eps) (seeds/000) instead of "
                                  "lr g / (sqrt(cache) + eps) (seeds/002)")


class Adadelta(OptimCommon):
    """Adadelta (Zeiler 2012, Algorithm 1; seeds/000 B.2)."""

    name: Literal["adadelta"] = "adadelta"
    lr: float = Field(1.0, gt=0, description="factor on Zeiler's step (1 = no learning rate)")
    rho: float = Field(0.95, gt=0, lt=1, description="decay rate of the running averages")
    eps: float = Field(1e-6, gt=0, description="epsilon")


class Adam(OptimCommon):
    """Adam with bias correction (Kingma & Ba 2015; seeds/003)."""

    name: Literal["adam"] = "adam"
    lr: float = Field(1e-3, gt=0, description="base learning rate")
    beta1: float = Field(0.9, ge=0, lt=1, description="first-moment decay")
    beta2: float = Field(0.999, ge=0, lt=1, description="second-moment decay")
    eps: float = Field(1e-8, gt=0, description="epsilon")


class AdaptiveGains(OptimCommon):
    """Per-weight gains (seeds/001; Hinton lecture 6d)."""

    name: Literal["adaptive_gains"] = "adaptive_gains"
    lr: float = Field(0.05, gt=0, description="base learning rate")
    gain_step: float = Field(0.05, ge=0, description="gain += gain_step when successive gradients agree in sign")
    gain_decay: float = Field(0.95, gt=0, le=1, description="gain *= gain_decay when they disagree")
    gain_min: float = Field(0.1, gt=0, description="lower bound of a gain")
    gain_max: float = Field(10.0, gt=0, description="upper bound of a gain")

    @model_validator(mode="after")
    def _ordered_bounds(self) -> "AdaptiveGains":
        if self.gain_min > self.gain_max:
            raise ValueError(f"optim.gain_min ({self.gain_min}) must be <= optim.gain_max ({self.gain_max})")
        return self


class LBFGS(OptimCommon):
    """L-BFGS (Nocedal 1980; seeds/003)."""

    name: Literal["lbfgs"] = "lbfgs"
    lr: float = Field(1.0, gt=0, description="step length factor")
    lbfgs_max_iter: int = Field(20, ge=1, description="iterations per optimizer step")
    lbfgs_history: int = Field(100, ge=1, description="stored curvature pairs")
    lbfgs_line_search: bool = Field(True, description="strong-Wolfe line search")

    @model_validator(mode="after")
    def _single_group(self) -> "LBFGS":
        if self.layer_lr:
            raise ValueError("optim.layer_lr: lbfgs keeps a single parameter group (torch.optim.LBFGS), "
                             "so per-layer learning rates are not available with it")
        return self


OPTIM_RULES: tuple[type[OptimCommon], ...] = (SGD, EMAMomentum, Adagrad, RMSprop, Adadelta, Adam,
                                              AdaptiveGains, LBFGS)

#: The ``optim:`` section: one of the rule classes, chosen by ``name``.
OptimConfig = Annotated[Union[OPTIM_RULES], Field(discriminator="name")]


# -- schedules -------------------------------------------------------------------------------
class ScheduleCommon(Section):
    """Keys every schedule reads. A schedule is a factor on ``optim.lr`` (t in epochs)."""

    KIND: ClassVar[str] = "schedule"

    name: str = Field("linear", description="learning-rate schedule (see `cnnlab list schedules`)")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up from lr/W to lr over this "
                                 "many epochs (W steps), on top of any schedule")

    @classmethod
    def own_keys(cls) -> list[str]:
        return [k for k in cls.model_fields if k not in ScheduleCommon.model_fields and k != "name"]


class ConstantSchedule(ScheduleCommon):
    name: Literal["constant"] = "constant"


class LinearSchedule(ScheduleCommon):
    name: Literal["linear"] = "linear"


class StepSchedule(ScheduleCommon):
    name: Literal["step"] = "step"
    step_epochs: float = Field(20, gt=0, description="multiply by gamma every this many epochs")
    gamma: float = Field(0.5, gt=0, le=1, description="the factor applied each time")


class ExponentialSchedule(ScheduleCommon):
    name: Literal["exponential", "exp"] = "exponential"
    k: float = Field(0.1, ge=0, description="decay rate per epoch")


class InverseTimeSchedule(ScheduleCommon):
    name: Literal["inverse_time", "1/t"] = "inverse_time"
    k: float = Field(0.1, ge=0, description="decay rate per epoch")


class CosineSchedule(ScheduleCommon):
    name: Literal["cosine"] = "cosine"


class OneCycleSchedule(ScheduleCommon):
    name: Literal["onecycle"] = "onecycle"
    pct_start: float = Field(0.3, gt=0, lt=1, description="fraction of steps spent rising")
    div_factor: float = Field(25.0, ge=1, description="start at lr / div_factor")
    final_div_factor: float = Field(1e4, ge=1, description="end at lr / (div_factor * final_div_factor)")
    momentum_cycle: tuple[Probability, Probability] | None = Field(
        None, description="[high, low] momentum, cycled against the rate (torch's default "
                          "[0.95, 0.85]); null keeps the optimizer's momentum")


class PlateauSchedule(ScheduleCommon):
    name: Literal["plateau"] = "plateau"
    monitor: str = Field("val_acc", description="metric column watched (e.g. val_acc)")
    mode: Literal["auto", "min", "max"] = Field("auto", description="whether the metric should go "
                                                "down or up; auto guesses from its name")
    gamma: float = Field(0.5, gt=0, le=1, description="the factor applied at each cut")
    patience: int = Field(3, ge=0, description="epochs without improvement before a cut")
    threshold: float = Field(0.0, ge=0, description="smallest change that counts as improvement (absolute)")
    cooldown: int = Field(0, ge=0, description="epochs to wait after a cut")
    min_factor: float = Field(0.0, ge=0, description="lower bound on the accumulated factor")

    @model_validator(mode="after")
    def _mode_known(self) -> "PlateauSchedule":
        from cnnlab.errors import ConfigError
        from cnnlab.optim.monitor import resolve_mode

        try:
            resolve_mode(self.monitor, self.mode, "schedule.monitor")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


SCHEDULE_KINDS: tuple[type[ScheduleCommon], ...] = (
    ConstantSchedule, LinearSchedule, StepSchedule, ExponentialSchedule, InverseTimeSchedule,
    CosineSchedule, OneCycleSchedule, PlateauSchedule)

#: The ``schedule:`` section: one of the schedule classes, chosen by ``name``.
ScheduleConfig = Annotated[Union[SCHEDULE_KINDS], Field(discriminator="name")]


def _names(classes) -> dict[str, type]:
    out = {}
    for cls in classes:
        for name in cls.model_fields["name"].annotation.__args__:
            out[name] = cls
    return out


#: name (and alias) -> config class
OPTIM_BY_NAME: dict[str, type[OptimCommon]] = _names(OPTIM_RULES)
SCHEDULE_BY_NAME: dict[str, type[ScheduleCommon]] = _names(SCHEDULE_KINDS)

#: When ``optim.name`` changes in a merge, these keys of the old section are dropped (they take
#: the new rule's defaults); every other common key is kept.
OPTIM_SWITCH_KEYS = ("lr",)
SCHEDULE_SWITCH_KEYS: tuple[str, ...] = ()

_OPTIM_ADAPTER: TypeAdapter = TypeAdapter(OptimConfig)
_SCHEDULE_ADAPTER: TypeAdapter = TypeAdapter(ScheduleConfig)


def optim_config(**values: Any) -> OptimCommon:
    """Build an ``optim:`` section in Python (``optim_config(name="adam", lr=1e-3)``)."""
    return _OPTIM_ADAPTER.validate_python({"name": "sgd", **values})


def schedule_config(**values: Any) -> ScheduleCommon:
    """Build a ``schedule:`` section in Python (``schedule_config(name="step", gamma=0.7)``)."""
    return _SCHEDULE_ADAPTER.validate_python({"name": "linear", **values})
