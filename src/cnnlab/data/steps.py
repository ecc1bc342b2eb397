"""Pipelines of named steps in YAML: preprocessing (``data.normalize``) and augmentation
(``data.augment``) are both lists of registry names with parameters.

A step is written as a bare name or as a one-entry mapping of its parameters::

    normalize: [scale, {zca: {eps: 0.01, fit_images: 10000}}]
    augment:   [{crop: {padding: 4}}, flip]

``{name: zca, eps: 0.01}`` (the name as a key among the parameters) is accepted too. Specs are
normalised to ``{"name": ..., **params}`` and checked against the steps' parameter classes
(:mod:`cnnlab.data.stepconfig`, no torch) when the config is read, so a typo in a name or
parameter fails then, naming the key; the steps are built from the checked specs.
"""

from __future__ import annotations

from typing import Any

from cnnlab.registry import Registry

StepSpec = dict[str, Any]


def normalize_spec(item: Any, key: str) -> StepSpec:
    """One step as ``{"name": str, **params}``; ValueError with the key on a malformed entry."""
    if isinstance(item, str):
        return {"name": item}
    if isinstance(item, dict):
        if "name" in item:
            return dict(item)
        if len(item) == 1:
            (name, params), = item.items()
            if params is None:
                params = {}
            if not isinstance(params, dict):
                raise ValueError(f"{key}: parameters of step '{name}' must be a mapping, got {params!r}")
            return {"name": str(name), **params}
    raise ValueError(f"{key}: a step is a name or {{name: {{param: value}}}}, got {item!r}")


def parse_steps(value: Any, key: str) -> list[StepSpec]:
    """A bare name, or a list of steps, as a list of normalised specs."""
    items = value if isinstance(value, list) else [value]
    return [normalize_spec(item, key) for item in items]


def build_step(spec: StepSpec, registry: Registry):
    """Instantiate one step from a spec checked by :func:`cnnlab.data.stepconfig.validate_steps`
    (the step classes do not check their parameters again)."""
    return registry.get(spec["name"])(**{k: v for k, v in spec.items() if k != "name"})


def step_repr(name: str, **params) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{name}({shown})"
