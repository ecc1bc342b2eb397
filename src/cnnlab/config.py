"""Experiment configs: YAML files validated against typed sections, with dotted overrides.

A config is plain data. Each package owns its section (``data:``, ``model:``, ``optim:``,
``schedule:``, ``train:``); this module composes them, reads YAML, applies command-line
overrides (``optim.lr=0.05``) and turns validation errors into messages that name the key,
say what is expected and suggest the closest valid key for a typo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from cnnlab.configbase import Section
from cnnlab.data.config import DataConfig
from cnnlab.errors import ConfigError
from cnnlab.models.config import ModelConfig
from cnnlab.monitor.config import MonitorConfig
from cnnlab.optim.config import OptimConfig, ScheduleConfig
from cnnlab.registry import did_you_mean
from cnnlab.train.config import TrainConfig

RECIPES_DIR = Path(__file__).resolve().parent / "recipes"

#: ``section: value`` with a bare string means ``section: {key: value}`` (``model: convnet``).
SHORTHAND = {"data": "source", "model": "arch", "optim": "name", "schedule": "name"}


class ExperimentConfig(Section):
    """The whole experiment. Its defaults are the main job: LeNet-5 on MNIST."""

    name: str = Field("lenet5-mnist", description="run name; the run directory is runs/<name>-<time>")
    seed: int = Field(0, description="seeds weights, shuffling, dropout and augmentation")
    device: str = Field("auto", description="auto (CUDA if present), cpu, cuda, cuda:N")
    runs_dir: str = Field("runs", description="parent folder of run directories")
    # Factories, not instances: building the optim/schedule defaults consults the registries,
    # which import torch; that should happen when a config is made, not when this module loads.
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(l2=5e-4))
    schedule: ScheduleConfig = Field(default_factory=lambda: ScheduleConfig(name="linear"))
    train: TrainConfig = Field(default_factory=TrainConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    @model_validator(mode="before")
    @classmethod
    def _expand_shorthand(cls, values: Any) -> Any:
        if isinstance(values, dict):
            values = dict(values)
            for section, key in SHORTHAND.items():
                if isinstance(values.get(section), str):
                    values[section] = {key: values[section]}
        return values

    def to_dict(self) -> dict:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _section_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the field at ``loc`` (for key suggestions)."""
    model: type[BaseModel] = ExperimentConfig
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def format_validation_error(exc: ValidationError, origin: str) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        key = ".".join(str(p) for p in loc) or "<config>"
        if err["type"] == "extra_forbidden":
            owner = _section_at(loc)
            prefix = ".".join(str(p) for p in loc[:-1])
            fields = [f"{prefix}.{f}" if prefix else f for f in owner.model_fields] if owner else []
            hint = did_you_mean(key, fields)
            valid = f" Valid keys here: {', '.join(owner.model_fields)}." if owner else ""
            lines.append(f"unknown key '{key}'.{hint}{valid}")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"{key}: {err['msg']}{shown}")
    return f"invalid config ({origin}):\n  " + "\n  ".join(lines)


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def read_yaml(source: str) -> tuple[dict, str]:
    """Read a config file, or a bundled recipe by name. Returns (data, origin)."""
    path = Path(source)
    if not path.is_file():
        recipe = RECIPES_DIR / f"{source}.yaml"
        if not recipe.is_file():
            raise ConfigError(f"{source}: no such config file or recipe.{did_you_mean(source, list_recipes())} "
                              f"Recipes: {', '.join(list_recipes())}")
        path = recipe
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of sections, got {type(data).__name__}")
    return data, str(path)


def apply_override(data: dict, override: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML: numbers, bools, lists) to ``data``."""
    if "=" not in override:
        raise ConfigError(f"override '{override}' must look like key=value, e.g. optim.lr=0.05")
    key, raw = override.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    parts = key.strip().split(".")
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if isinstance(child, str) and depth == 0 and part in SHORTHAND:
            child = {SHORTHAND[part]: child}
        if child is None:
            child = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override '{override}': '{'.'.join(parts[:depth + 1])}' is not a section")
        node[part] = child
        node = child
    node[parts[-1]] = value


def build_config(data: dict, origin: str = "<config>") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin)) from None


def load_config(source: str | None = None, overrides: list[str] = ()) -> ExperimentConfig:
    """Defaults <- YAML file or recipe <- dotted overrides, validated."""
    data, origin = read_yaml(source) if source else ({}, "defaults")
    for override in overrides:
        apply_override(data, override)
    if overrides:
        origin += " + overrides"
    return build_config(data, origin)
