"""Experiment configs: YAML files validated against typed sections, with dotted overrides.

A config is plain data. Each package owns its section (``data:``, ``model:``, ``optim:``,
``schedule:``, ``train:``, ``monitor:``); this module composes them, reads YAML, merges and
validates, and turns validation errors into messages that name the key, say what is expected
and suggest the closest valid key for a typo. Nothing here imports torch.

How a config is resolved (one path for the CLI, the Python API and the search)::

    base recipe (``base:``, default lenet5-mnist: the main job)
      <- the file or recipe's own keys        deep-merged
      <- every KEY=VALUE override at once     deep-merged
      -> validated ExperimentConfig

Deep merge means ``a.b=v`` changes ``a.b`` and nothing else. One rule on top: a *switch* of a
section's kind (``optim.name``, ``schedule.name``, ``data.source``) drops the keys that belong to
the old kind, so that the new one starts from its own documented defaults
(:data:`SWITCHES`); e.g. ``optim=adam`` gives Adam's ``lr``, ``beta1``, ``beta2``, ``eps`` and
keeps ``l2``, ``l1``, ``layer_lr``, clipping, max-norm and label smoothing as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, get_args

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

import cnnlab.physics.config  # noqa: F401  (registers the check of data.jet_prep into the data section)
from cnnlab.configbase import Section
from cnnlab.data.config import DataConfig
from cnnlab.errors import ConfigError
from cnnlab.models.config import ModelConfig
from cnnlab.monitor.config import MonitorConfig
from cnnlab.optim.config import (OPTIM_SWITCH_KEYS, SCHEDULE_SWITCH_KEYS, LinearSchedule, OptimCommon,
                                 OptimConfig, ScheduleCommon, ScheduleConfig, SGD)
from cnnlab.registry import did_you_mean
from cnnlab.train.config import TrainConfig
from cnnlab.train.pretrainconfig import PretrainConfig, dbn_layers
from cnnlab.yamlio import parse_yaml, read_yaml_file

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"
#: The recipe every config builds on unless it names another ``base:`` (``base: none``: none).
DEFAULT_BASE = "lenet5-mnist"

#: ``section: value`` with a bare value means ``section: {key: value}`` (``model: convnet``).
SHORTHAND = {("data",): "source", ("model",): "arch", ("optim",): "name", ("schedule",): "name",
             ("train", "early_stopping"): "algorithm", ("pretrain",): "method"}


@dataclass(frozen=True)
class Switch:
    """``key`` selects the kind of a section; when a merge changes it, ``owned(old)`` says which
    keys of the old section belonged to the old kind (they are dropped, not carried over)."""

    key: str
    owned: Callable[[dict], set[str]]


def _not_common(common: type[BaseModel], switch_keys) -> Callable[[dict], set[str]]:
    keep = set(common.model_fields) - set(switch_keys)
    return lambda old: {k for k in old if k not in keep and k != "name"}


SWITCHES: dict[tuple[str, ...], Switch] = {
    ("optim",): Switch("name", _not_common(OptimCommon, OPTIM_SWITCH_KEYS)),
    ("schedule",): Switch("name", _not_common(ScheduleCommon, SCHEDULE_SWITCH_KEYS)),
    # a dataset's location and the jets' preprocessing belong to the source that reads them
    ("data",): Switch("source", lambda old: {"path", "jet_prep"} & set(old)),
}


class ExperimentConfig(Section):
    """The whole experiment. The field defaults are the schema's; the main job (LeNet-5 on
    MNIST) is the ``lenet5-mnist`` recipe, which every config builds on (:func:`load_config`)."""

    name: str = Field("lenet5-mnist", description="run name; the run directory is runs/<name>-<time>")
    seed: int = Field(0, description="seeds weights, shuffling, dropout and augmentation")
    device: str = Field("auto", description="auto (CUDA if present), cpu, cuda, cuda:N")
    runs_dir: str = Field("runs", description="parent folder of run directories")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=SGD)
    schedule: ScheduleConfig = Field(default_factory=LinearSchedule)
    train: TrainConfig = Field(default_factory=TrainConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, values: Any) -> Any:
        return expand_shorthand(values) if isinstance(values, dict) else values

    @model_validator(mode="after")
    def _pretrainable(self):
        if self.pretrain.method == "none":
            return self
        from cnnlab.models.zoo import resolve_arch  # no torch

        if self.model.init_from:
            raise ValueError("give model.init_from (trained weights) or pretrain (RBMs), not both")
        _, specs = resolve_arch(self.model.arch)
        if specs is None:
            raise ValueError(f"pretrain.method={self.pretrain.method}: model '{self.model.arch}' is a custom "
                             "factory; pre-training needs a zoo model or a spec")
        try:
            dbn_layers(specs, self.pretrain.layers)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        # the name becomes a folder under runs_dir: "../x" would put the run outside it
        if not name or name.startswith(".") or not all(c.isalnum() or c in "._-+" for c in name):
            raise ValueError(f"a run name is letters, digits and . _ - + (no '/' or leading '.'), got {name!r}")
        return name

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# -- merging ---------------------------------------------------------------------------------
def expand_shorthand(data: dict) -> dict:
    """A copy of ``data`` with ``model: convnet`` as ``model: {arch: convnet}`` (see SHORTHAND)."""
    data = dict(data)
    for path, key in SHORTHAND.items():
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                break
            node[part] = node = dict(child)
        else:
            value = node.get(path[-1])
            if isinstance(value, str) or (path == ("model",) and isinstance(value, list)):
                node[path[-1]] = {key: value}
    return data


def merge(base: dict, over: dict, path: tuple[str, ...] = (), switches: bool = True) -> dict:
    """``over`` deep-merged onto ``base`` (neither is changed): mappings merge key by key, any
    other value replaces; a changed kind (:data:`SWITCHES`) drops the old kind's own keys."""
    if not path:
        base, over = expand_shorthand(base), expand_shorthand(over)
    out = dict(base)
    switch = SWITCHES.get(path) if switches else None
    if switch and switch.key in over and over[switch.key] != base.get(switch.key):
        for key in switch.owned(base):
            out.pop(key, None)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, (*path, key), switches)
        else:
            out[key] = value
    return out


def parse_override(override: str) -> dict:
    """``a.b.c=value`` as ``{a: {b: {c: value}}}`` (the value parsed as YAML: numbers, bools, lists)."""
    if "=" not in override or override.startswith("="):
        raise ConfigError(f"override '{override}' must look like key=value, e.g. optim.lr=0.05")
    key, raw = override.split("=", 1)
    value = parse_yaml(raw, f"override '{override}'", invalid=raw) if raw else ""
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override '{override}': '{key}' is not a dotted key such as optim.lr")
    for part in reversed(parts):
        value = {part: value}
    return value


def overrides_to_dict(overrides) -> dict:
    """All overrides as one mapping (so their order never matters, e.g. ``optim.lr`` and ``optim.name``)."""
    merged: dict = {}
    for override in overrides:
        parsed = expand_shorthand(parse_override(override))
        _check_no_clash(merged, parsed, override)
        merged = merge(merged, parsed, switches=False)  # accumulate; the switch applies once, onto the base
    return merged


def _check_no_clash(have: dict, new: dict, override: str, path: tuple[str, ...] = ()) -> None:
    for key, value in new.items():
        if key not in have:
            continue
        old = have[key]
        where = ".".join((*path, key))
        if isinstance(old, dict) != isinstance(value, dict):
            raise ConfigError(f"override '{override}': '{where}' is set both as a section and as a value")
        if isinstance(value, dict):
            _check_no_clash(old, value, override, (*path, key))


def apply_override(data: dict, override: str) -> dict:
    """``data`` with one override merged in (a new dict; ``data`` is left as it was)."""
    return merge(data, parse_override(override))


# -- files and recipes -----------------------------------------------------------------------
def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def _find(source: str) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    recipe = RECIPES_DIR / f"{source}.yaml"
    if recipe.is_file():
        return recipe
    if path.suffix in (".yaml", ".yml") or "/" in source:
        raise ConfigError(f"{source}: no such config file")
    raise ConfigError(f"{source}: no such config file or recipe.{did_you_mean(source, list_recipes())} "
                      f"Recipes: {', '.join(list_recipes())}")


def read_yaml(source: str) -> tuple[dict, str]:
    """Read a config file, or a bundled recipe by name, as it is written. Returns (data, origin)."""
    path = _find(source)
    data = read_yaml_file(path)  # size, alias expansion and duplicate keys limited
    if data is None:  # 0 bytes or only comments: training the default recipe would hide the mistake
        raise ConfigError(f"{path}: the config file is empty; give at least a name or base "
                          f"(base: {DEFAULT_BASE} trains the default recipe)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data, str(path)


def resolve_source(source: str, _seen: tuple[str, ...] = ()) -> tuple[dict, str]:
    """A file or recipe merged onto its ``base:`` chain (without the ``base`` key)."""
    data, origin = read_yaml(source)
    here = str(Path(origin).resolve())
    if here in _seen:
        raise ConfigError(f"{origin}: 'base:' chain loops back to itself")
    base = data.pop("base", DEFAULT_BASE)
    if base in (None, "none"):
        return data, origin
    if not isinstance(base, str):
        raise ConfigError(f"{origin}: base: must be a recipe name or a file, got {base!r}")
    if not Path(base).is_absolute() and (Path(origin).parent / base).is_file():
        base = str(Path(origin).parent / base)
    base_data, _ = resolve_source(base, (*_seen, here))
    return merge(base_data, data), origin


# -- validation ------------------------------------------------------------------------------
def _tagged_classes(field) -> dict[str, type[BaseModel]] | None:
    """For a discriminated-union field: tag -> class; None for any other field."""
    if getattr(field, "discriminator", None) is None:
        return None
    out = {}
    for cls in get_args(field.annotation) or ():
        for tag in get_args(cls.model_fields[field.discriminator].annotation):
            out[tag] = cls
    return out


def _walk(loc: tuple, root: type[BaseModel]) -> tuple[list[str], type[BaseModel] | None]:
    """The config key path of an error location (union tags removed) and the model owning its
    last part."""
    model: type[BaseModel] | None = root
    keys: list[str] = []
    parts = [p for p in loc if not str(p).startswith("function-")]
    i = 0
    while i < len(parts):
        keys.append(str(parts[i]))
        if i == len(parts) - 1:
            break
        field = model.model_fields.get(str(parts[i])) if model else None
        tags = _tagged_classes(field) if field is not None else None
        if tags is not None and i + 1 < len(parts) and str(parts[i + 1]) in tags:
            model = tags[str(parts[i + 1])]
            i += 2
            continue
        annotation = getattr(field, "annotation", None)
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
        i += 1
    return keys, model


def _describe_error(err: dict, root: type[BaseModel]) -> str:
    keys, owner = _walk(tuple(err["loc"]), root)
    key = ".".join(keys) or "<config>"
    if err["type"] == "extra_forbidden":
        prefix = ".".join(keys[:-1])
        fields = list(owner.model_fields) if owner else []
        kind = getattr(owner, "KIND", None)
        siblings = [c for base in owner.__mro__[1:2] for c in base.__subclasses__()] if kind else []
        if kind and any(keys[-1] in c.model_fields for c in siblings):  # another rule's key
            own = owner.own_keys()
            name = owner.model_fields["name"].default
            reads = f"its own keys: {', '.join(own)}" if own else "it has no own keys"
            return (f"{key} does not apply to {kind} '{name}' ({reads}; common keys: "
                    f"{', '.join(k for k in fields if k not in own and k != 'name')}).")
        valid = f" Valid keys here: {', '.join(fields)}." if owner else ""
        return f"unknown key '{key}'.{did_you_mean(key, [f'{prefix}.{f}' if prefix else f for f in fields])}{valid}"
    if err["type"] == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tags = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",")]
        got, field = ctx.get("tag"), str(ctx.get("discriminator", "name")).strip("'")
        field_info = owner.model_fields.get(keys[-1]) if owner else None
        classes = _tagged_classes(field_info) if field_info is not None else None
        kind = getattr(next(iter(classes.values())), "KIND", key) if classes else key
        return f"{key}.{field}: unknown {kind} '{got}'.{did_you_mean(str(got), tags)} Known: {', '.join(tags)}"
    got = err.get("input")
    message = err["msg"].removeprefix("Value error, ").removeprefix(f"{key}: ")  # said once, in front
    shown = "" if isinstance(got, dict) or "got " in message else f" (got {_clip(repr(got))})"  # or said already
    return f"{key}: {message}{shown}"


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def format_validation_error(exc: ValidationError, origin: str, root: type[BaseModel] | None = None,
                            what: str = "config") -> str:
    """One line per error, naming the dotted key (of ``root``: the experiment config unless said)."""
    root = root or ExperimentConfig
    return f"invalid {what} ({origin}):\n  " + "\n  ".join(_describe_error(e, root) for e in exc.errors())


def build_config(data: dict, origin: str = "<config>") -> ExperimentConfig:
    """Validate resolved config data (no base is applied: a run's config.yaml is complete)."""
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None


def resolve_data(source: str | None = None, overrides=(), **sections: Any) -> tuple[dict, str]:
    """The merged, not yet validated data of :func:`load_config` (for callers that merge more)."""
    data, origin = resolve_source(source or DEFAULT_BASE)
    extra = overrides_to_dict(overrides)
    if sections:
        extra = merge(extra, sections, switches=False)
    if extra:
        data = merge(data, extra)
        origin += " + overrides"
    return data, origin


def load_config(source: str | None = None, overrides=(), **sections: Any) -> ExperimentConfig:
    """base recipe <- file or recipe (default: the main job) <- overrides, validated.

    ``overrides`` are ``"a.b=value"`` strings; ``sections`` are the same as nested mappings
    (``optim={"lr": 0.1}``), for Python callers.
    """
    data, origin = resolve_data(source, overrides, **sections)
    return build_config(data, origin)

