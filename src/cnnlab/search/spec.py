"""The search file: a base experiment, a space over dotted config keys, stages (seeds/002).

::

    base: twolayer-cifar10        # recipe or config file (relative to this file)
    overrides: [train.epochs=5]   # optional, applied to the base of every trial
    metric: val_acc               # or val_loss, train_loss...; direction from the name
    sampler: random               # random (default), tpe, qmc (scrambled Sobol), grid
    pruner: none                  # none, median, asha, hyperband
    seed: 0
    space:
      optim.lr: {log_uniform: [1.0e-6, 1.0e-3]}     # 10^U(-6, -3)
      optim.l2: {log_uniform: [1.0e-5, 1.0e+5]}
      model.keep: {uniform: [0.5, 1.0]}
      train.batch_size: {choice: [64, 128, 256]}
    stages:
      - {trials: 100, train.epochs: 5}              # coarse: a few epochs, wide ranges
      - {trials: 100, train.epochs: 20, narrow: 10} # fine: the top 10's ranges, widened x2

Everything here is plain data checked without torch; :func:`check_against_config` then builds
the config of every range end (and every choice) so a key that is not in the config schema, or
a value it refuses, fails before the first trial runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from cnnlab.configbase import Section
from cnnlab.errors import ConfigError
from cnnlab.yamlio import read_yaml_file

#: distribution name -> what it draws (the README lists them)
DISTRIBUTIONS = {
    "log_uniform": "x = 10^U(log10 lo, log10 hi): a float, uniform in log units (seeds/002)",
    "uniform": "x = U(lo, hi): a float",
    "int": "an integer in [lo, hi], uniform",
    "int_log2": "a power of two in [lo, hi], its exponent uniform",
    "choice": "one of the listed values",
}


class Param(Section):
    """One dimension of the space: exactly one distribution with its range or values."""

    key: str
    kind: Literal["log_uniform", "uniform", "int", "int_log2", "choice"]
    low: float | None = None
    high: float | None = None
    choices: list[Any] | None = None

    @property
    def scalar_choices(self) -> bool:
        """Choices Optuna can hold as they are; lists and mappings travel as YAML text."""
        return all(c is None or isinstance(c, (bool, int, float, str)) for c in self.choices or [])

    @property
    def numeric(self) -> bool:
        return self.kind != "choice"

    @property
    def log(self) -> bool:
        """Ranges measured in log units (borders, narrowing, plots)."""
        return self.kind in ("log_uniform", "int_log2")

    def to_unit(self, value: float) -> float:
        """Position in [0, 1] of the range, in log units for log ranges."""
        lo, hi, v = (math.log(x) for x in (self.low, self.high, value)) if self.log else (self.low, self.high, value)
        return 0.5 if hi == lo else (v - lo) / (hi - lo)

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice {self.choices}"
        return f"{self.kind} [{self.low:g}, {self.high:g}]"

    def to_data(self) -> dict:
        return {self.kind: self.choices if self.kind == "choice" else [_plain(self.low, self), _plain(self.high, self)]}


def _plain(x: float, p: Param):
    return int(x) if p.kind in ("int", "int_log2") else float(x)


def parse_param(key: str, value: Any) -> Param:
    """``{log_uniform: [lo, hi]}`` (etc.) -> :class:`Param`; ConfigError naming the key."""
    where = f"space.{key}"
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(f"{where}: give one distribution, e.g. {{log_uniform: [1.0e-6, 1.0e-3]}} "
                          f"(distributions: {', '.join(DISTRIBUTIONS)})")
    (kind, args), = value.items()
    if kind not in DISTRIBUTIONS:
        from cnnlab.registry import did_you_mean

        raise ConfigError(f"{where}: unknown distribution '{kind}'.{did_you_mean(str(kind), list(DISTRIBUTIONS))} "
                          f"Distributions: {', '.join(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}: choice needs a non-empty list of values, got {args!r}")
        if len({yaml.safe_dump(a) for a in args}) != len(args):
            raise ConfigError(f"{where}: choice lists a value twice: {args}")
        return Param(key=key, kind=kind, choices=args)
    if (not isinstance(args, list) or len(args) != 2
            or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)):
        raise ConfigError(f"{where}: {kind} needs [low, high] (two numbers), got {args!r}")
    low, high = (float(a) for a in args)
    if not all(math.isfinite(a) for a in (low, high)):
        raise ConfigError(f"{where}: {kind} bounds must be finite, got {args}")
    if not low < high:
        raise ConfigError(f"{where}: empty or inverted range [{args[0]}, {args[1]}]: low must be below high")
    if kind in ("log_uniform", "int_log2") and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {args[0]}")
    if kind in ("int", "int_log2") and not (low.is_integer() and high.is_integer()):
        raise ConfigError(f"{where}: {kind} bounds must be integers, got {args}")
    if kind == "int_log2" and not all(_power_of_two(int(a)) for a in (low, high)):
        raise ConfigError(f"{where}: int_log2 bounds must be powers of two (1, 2, 4, ...), got {args}")
    return Param(key=key, kind=kind, low=low, high=high)


def _power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


class Stage(Section):
    """One stage: how many trials, optional narrowing, and config overrides for its trials."""

    model_config = ConfigDict(extra="allow")

    trials: int = Field(ge=1, description="complete (or pruned) trials this stage needs")
    narrow: int | None = Field(None, ge=1, description="search the span of the previous stage's top K, widened")
    space: dict[str, Any] | None = Field(
        None, description="new distributions for some keys of the search's space in this stage "
                          "(the seed's hand-narrowed fine stage); the other keys keep theirs")

    @model_validator(mode="after")
    def _narrow_or_space(self):
        if self.narrow and self.space:
            raise ValueError("a stage narrows automatically (narrow: K) or gives its own space, not both")
        return self

    @property
    def overrides(self) -> list[str]:
        return [override(k, v) for k, v in (self.model_extra or {}).items()]


class SearchSpec(Section):
    """A validated search file (see the module docstring)."""

    base: str | None = Field(None, description="recipe name or config file; None = the main job")
    overrides: list[str] = Field(default_factory=list, description="KEY=VALUE applied to every trial")
    metric: str = Field("val_acc", description="metric of metrics.csv to optimise (best epoch counts)")
    direction: Literal["auto", "maximize", "minimize"] = Field(
        "auto", description="auto: maximize metrics named *acc*, *auc*; minimize the rest (loss, error)")
    sampler: Literal["random", "tpe", "qmc", "grid"] = "random"
    grid_points: int = Field(5, ge=2, description="grid sampler: points per numeric range")
    pruner: Literal["none", "median", "asha", "hyperband"] = "none"
    seed: int = 0
    space: dict[str, Any]
    stages: list[Stage] = Field(default_factory=lambda: [Stage(trials=20)])

    #: set by :func:`load_search`: the file, for relative bases
    origin: str = "<search>"

    @field_validator("space")
    @classmethod
    def _nonempty(cls, space):
        if not space:
            raise ValueError("the space is empty: name at least one config key with a distribution")
        return space

    @field_validator("overrides", mode="before")
    @classmethod
    def _as_list(cls, value):
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _first_stage_cannot_narrow(self):
        if self.stages and self.stages[0].narrow:
            raise ValueError("stages[0] cannot narrow: there is no previous stage")
        if not self.stages:
            raise ValueError("stages is empty: give at least one {trials: N}")
        return self

    @property
    def params(self) -> list[Param]:
        return [parse_param(k, v) for k, v in self.space.items()]

    def stage_params(self, i: int) -> list[Param]:
        """The space of stage ``i`` before any narrowing: the search's, with the stage's own
        distributions in place of those it names."""
        own = self.stages[i].space or {}
        return [parse_param(k, own[k]) if k in own else p for k, p in zip(self.space, self.params)]

    @property
    def maximize(self) -> bool:
        if self.direction != "auto":
            return self.direction == "maximize"
        return any(word in self.metric for word in ("acc", "auc"))


#: bundled search files, found by name (``cnnlab search twolayer-cifar10``)
SEARCHES_DIR = Path(__file__).resolve().parent.parent / "searches"


def list_searches() -> list[str]:
    return sorted(p.stem for p in SEARCHES_DIR.glob("*.yaml"))


def load_search(path: str | Path, overrides: list[str] = ()) -> SearchSpec:
    """Read and validate a search file; ``overrides`` (KEY=VALUE) are added to its ``overrides``."""
    from cnnlab.config import format_validation_error

    path = Path(path)
    if not path.is_file() and (SEARCHES_DIR / f"{path}.yaml").is_file():
        path = SEARCHES_DIR / f"{path}.yaml"
    if not path.is_file():
        from cnnlab.registry import did_you_mean

        known = list_searches()
        raise ConfigError(f"{path}: no such search file or bundled search.{did_you_mean(str(path), known)} "
                          f"Bundled: {', '.join(known)}")
    data = read_yaml_file(path) or {}  # size, alias expansion and duplicate keys limited, as configs
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a search file is a mapping (base, space, stages...), got {type(data).__name__}")
    if "origin" in data:
        raise ConfigError(f"{path}: unknown key 'origin'")
    try:
        spec = SearchSpec.model_validate({**data, "origin": str(path)})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), SearchSpec, "search file")) from None
    spec.overrides = [*spec.overrides, *overrides]
    for i, stage in enumerate(spec.stages):
        unknown = sorted(set(stage.space or {}) - set(spec.space))
        if unknown:
            raise ConfigError(f"{path}: stages[{i}].space names {', '.join(unknown)}, which the search's "
                              f"space does not (it has {', '.join(spec.space)})")
        spec.stage_params(i)  # parses every distribution: errors name the key
        for key in stage.model_extra or {}:
            if "." not in key and key not in ("name", "seed", "device", "runs_dir"):
                raise ConfigError(f"{path}: stages[{i}].{key}: a stage has trials, narrow and dotted config "
                                  f"keys (train.epochs: 5); '{key}' is none of those")
            if key in spec.space:
                raise ConfigError(f"{path}: stages[{i}] sets {key}, which the space searches; remove one")
    return spec


def base_source(spec: SearchSpec) -> str | None:
    """The base as :func:`cnnlab.config.load_config` takes it (files relative to the search file)."""
    if spec.base is None:
        return None
    relative = Path(spec.origin).parent / spec.base
    return str(relative) if relative.is_file() else spec.base


def check_against_config(spec: SearchSpec) -> None:
    """Build the config of every stage at every range end and choice: a key outside the config
    schema, or a value it refuses, is a ConfigError naming the space key, before any trial runs."""
    from cnnlab.config import load_config

    source = base_source(spec)
    for i, stage in enumerate(spec.stages):
        fixed = [*spec.overrides, *stage.overrides]
        load_config(source, fixed)  # the stage's own overrides
        for p in spec.stage_params(i):
            values = p.choices if p.kind == "choice" else [_plain(p.low, p), _plain(p.high, p)]
            for value in values:
                try:
                    load_config(source, [*fixed, override(p.key, value)])
                except ConfigError as exc:
                    raise ConfigError(f"space.{p.key} = {value!r} (stages[{i}]): {exc}") from None


def yaml_text(value: Any) -> str:
    """``value`` as one line of YAML (``[0.5, 0.8]``, ``{crop: {padding: 4}}``, ``0.001``)."""
    return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()


def override(key: str, value: Any) -> str:
    """``key=value`` with the value written as YAML (lists, mappings and strings survive)."""
    return f"{key}={yaml_text(value)}"
