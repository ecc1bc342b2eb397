"""The ``optim:`` and ``schedule:`` sections. ``optim: adam`` is short for ``optim: {name: adam}``.

Keys fall in two kinds:

- common keys (``lr``, the regularisers, clipping, per-layer multipliers) apply to every rule;
- rule-specific keys (``momentum``, ``rho``, ``beta1``...) default to ``None`` and are filled
  from the chosen rule's (or schedule's) own defaults, so ``optim: adadelta`` means Zeiler's
  Adadelta with ``lr: 1.0`` rather than a learning rate meant for SGD. Setting a key the chosen
  rule does not read is an error, so ``optim: {name: adam, momentum: 0.5}`` cannot silently do
  nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_serializer, model_validator

from cnnlab.configbase import Section

#: optim keys that only some rules read (each rule lists its own in ``UpdateRule.defaults``)
OPTIM_RULE_KEYS = ("momentum", "nesterov", "rho", "eps", "eps_inside_sqrt", "beta1", "beta2",
                   "gain_step", "gain_decay", "gain_min", "gain_max",
                   "lbfgs_max_iter", "lbfgs_history", "lbfgs_line_search")
#: schedule keys that only some schedules read
SCHEDULE_KEYS = ("step_epochs", "gamma", "k", "monitor", "mode", "patience", "threshold",
                 "cooldown", "min_factor", "pct_start", "div_factor", "final_div_factor",
                 "momentum_cycle")


def _fill_defaults(data: Any, registry_name: str, default_name: str) -> Any:
    """Before validation: copy the chosen entry's defaults into keys left out (or null)."""
    if not isinstance(data, dict):
        return data
    registry = _registry(registry_name)
    name = data.get("name", default_name)
    if not isinstance(name, str) or name not in registry:
        return data  # the name validator reports it
    data = dict(data)
    for key, value in registry.get(name).defaults.items():
        if data.get(key) is None:
            data[key] = value
    return data


def _check_applicable(section: Section, section_name: str, registry_name: str, keys) -> None:
    """After validation: a rule-specific key set for an entry that does not read it is an error."""
    entry = _registry(registry_name).get(section.name)
    stray = [k for k in keys if getattr(section, k) is not None and k not in entry.defaults]
    if stray:
        reads = f"it reads: {', '.join(entry.defaults)}" if entry.defaults else "it has no own keys"
        raise ValueError(
            f"{', '.join(f'{section_name}.{k}' for k in stray)} does not apply to {registry_name} "
            f"'{section.name}' ({reads}). Remove it or set it to null; to switch {registry_name}s on "
            f"the command line replace the whole section ({section_name}=NAME), not just {section_name}.name")


def _without_unused(data: dict, keys) -> dict:
    """A dumped section without the rule-specific keys its rule does not read (they are null),
    so resolved configs (run_dir/config.yaml, --print-config) show only what applies."""
    return {k: v for k, v in data.items() if not (k in keys and v is None)}


def _registry(kind: str):
    # Imported lazily: the registries import this module for their type hints.
    if kind == "optimizer":
        from cnnlab.optim.optimizers import OPTIMIZERS
        return OPTIMIZERS
    from cnnlab.optim.schedules import SCHEDULES
    return SCHEDULES


def _known(kind: str, name: str) -> str:
    return _registry(kind).validate(name)


class OptimConfig(Section):
    """Update rule, its hyperparameters, and the regularisers applied with it."""

    name: str = Field("sgd", description="update rule (see `cnnlab list optimizers`)")
    lr: float | None = Field(None, gt=0, description="base learning rate; default depends on the rule")
    # -- rule-specific (None = the rule's default; see the README table) ---------------------
    momentum: float | None = Field(None, ge=0, lt=1, description="sgd: mu in v = mu v - lr g; "
                                   "ema_momentum: beta in m = beta m + (1-beta) g")
    nesterov: bool | None = Field(None, description="sgd: Nesterov momentum")
    rho: float | None = Field(None, gt=0, lt=1, description="rmsprop/adadelta: decay rate of the "
                              "running averages")
    eps: float | None = Field(None, gt=0, description="adagrad/rmsprop/adadelta/adam: epsilon")
    eps_inside_sqrt: bool | None = Field(None, description="rmsprop: lr g / sqrt(cache + eps) "
                                         "(seeds/000) instead of lr g / (sqrt(cache) + eps) (seeds/002)")
    beta1: float | None = Field(None, ge=0, lt=1, description="adam: first-moment decay")
    beta2: float | None = Field(None, ge=0, lt=1, description="adam: second-moment decay")
    gain_step: float | None = Field(None, ge=0, description="adaptive_gains: gain += gain_step when "
                                    "successive gradients agree in sign")
    gain_decay: float | None = Field(None, gt=0, le=1, description="adaptive_gains: gain *= gain_decay "
                                     "when they disagree")
    gain_min: float | None = Field(None, gt=0, description="adaptive_gains: lower bound of a gain")
    gain_max: float | None = Field(None, gt=0, description="adaptive_gains: upper bound of a gain")
    lbfgs_max_iter: int | None = Field(None, ge=1, description="lbfgs: iterations per optimizer step")
    lbfgs_history: int | None = Field(None, ge=1, description="lbfgs: stored curvature pairs")
    lbfgs_line_search: bool | None = Field(None, description="lbfgs: strong-Wolfe line search")
    # -- common to every rule ----------------------------------------------------------------
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

    @field_validator("name")
    @classmethod
    def _known_rule(cls, name: str) -> str:
        return _known("optimizer", name)

    @field_validator("layer_lr")
    @classmethod
    def _positive_multipliers(cls, value: dict) -> dict:
        bad = {k: v for k, v in value.items() if not v > 0}
        if bad:
            raise ValueError(f"layer_lr multipliers must be > 0, got {bad}")
        return value

    @model_validator(mode="before")
    @classmethod
    def _rule_defaults(cls, data: Any) -> Any:
        return _fill_defaults(data, "optimizer", "sgd")

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler):
        return _without_unused(handler(self), OPTIM_RULE_KEYS)

    @model_validator(mode="after")
    def _rule_keys_apply(self) -> "OptimConfig":
        _check_applicable(self, "optim", "optimizer", OPTIM_RULE_KEYS)
        if self.gain_min is not None and self.gain_max is not None and self.gain_min > self.gain_max:
            raise ValueError(f"optim.gain_min ({self.gain_min}) must be <= optim.gain_max ({self.gain_max})")
        if self.name == "lbfgs" and self.layer_lr:
            raise ValueError("optim.layer_lr: lbfgs keeps a single parameter group (torch.optim.LBFGS), "
                             "so per-layer learning rates are not available with it")
        return self


class ScheduleConfig(Section):
    """Learning-rate schedule: a factor on ``optim.lr`` as training progresses (t in epochs)."""

    name: str = Field("linear", description="learning-rate schedule (see `cnnlab list schedules`)")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up from lr/W to lr over this "
                                 "many epochs (W steps), on top of any schedule")
    # -- schedule-specific (None = the schedule's default) -----------------------------------
    step_epochs: float | None = Field(None, gt=0, description="step: multiply by gamma every this many epochs")
    gamma: float | None = Field(None, gt=0, le=1, description="step/plateau: the factor applied each time")
    k: float | None = Field(None, ge=0, description="exponential/inverse_time: decay rate per epoch")
    monitor: str | None = Field(None, description="plateau: metric column watched (e.g. val_acc)")
    mode: Literal["auto", "min", "max"] | None = Field(None, description="plateau: whether the metric "
                                                     "should go down or up; auto guesses from its name")
    patience: int | None = Field(None, ge=0, description="plateau: epochs without improvement before a cut")
    threshold: float | None = Field(None, ge=0, description="plateau: smallest change that counts as "
                                    "improvement (absolute)")
    cooldown: int | None = Field(None, ge=0, description="plateau: epochs to wait after a cut")
    min_factor: float | None = Field(None, ge=0, description="plateau: lower bound on the accumulated factor")
    pct_start: float | None = Field(None, gt=0, lt=1, description="onecycle: fraction of steps spent rising")
    div_factor: float | None = Field(None, ge=1, description="onecycle: start at lr / div_factor")
    final_div_factor: float | None = Field(None, ge=1, description="onecycle: end at lr / (div_factor "
                                           "* final_div_factor)")
    momentum_cycle: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] | None = Field(
        None, description="onecycle: [high, low] momentum, cycled against the rate (torch's default "
                          "[0.95, 0.85]); null keeps the optimizer's momentum")

    @field_validator("name")
    @classmethod
    def _known_schedule(cls, name: str) -> str:
        return _known("schedule", name)

    @model_validator(mode="before")
    @classmethod
    def _schedule_defaults(cls, data: Any) -> Any:
        return _fill_defaults(data, "schedule", "linear")

    @model_serializer(mode="wrap")
    def _omit_unused(self, handler):
        return _without_unused(handler(self), SCHEDULE_KEYS)

    @model_validator(mode="after")
    def _schedule_keys_apply(self) -> "ScheduleConfig":
        _check_applicable(self, "schedule", "schedule", SCHEDULE_KEYS)
        if self.monitor is not None:
            from cnnlab.errors import ConfigError
            from cnnlab.optim.monitor import resolve_mode

            try:
                resolve_mode(self.monitor, self.mode or "auto", "schedule.monitor")
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return self
