"""Overrides deep-merge: `a.b=v` changes `a.b` and nothing else, for every recipe and every key
(the property the search relies on: a sampled override changes that hyperparameter only)."""

from __future__ import annotations

import json

import pytest

from cnnlab.config import SWITCHES, list_recipes, load_config
from cnnlab.errors import ConfigError

#: the keys that select a section's kind: changing them resets that kind's own keys (by design)
DISCRIMINATORS = {".".join((*path, switch.key)) for path, switch in SWITCHES.items()}


def leaves(data: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(leaves(value, path + "."))
        else:
            out[path] = value
    return out


def candidates(value) -> list:
    """Other values of the same kind, most likely valid first."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2, max(1, value - 1)]
    if isinstance(value, float):
        return [value * 0.5, value * 0.9, value + 0.1, 0.5, 1e-3]
    if value is None:
        return [0.5, 1, True, "he", "classic", [0.9, 0.8], [0.5], "cpu"]
    if isinstance(value, str):  # free text, then the values of the Literal-typed keys
        return [value + "x", "cpu", "scale", "sample", "float16", "stream", "nchw", "patience", "min",
                "val_loss", "lenet5"]
    if isinstance(value, list):
        return [value[:1], []] if len(value) > 1 else [[], ["flip"]]
    return []


@pytest.mark.parametrize("recipe", list_recipes())
def test_overriding_one_key_changes_that_key_only(recipe):
    base = leaves(load_config(recipe).to_dict())
    tested = []
    for key, value in base.items():
        if key in DISCRIMINATORS:
            continue
        for new in candidates(value):
            if new == value:
                continue
            try:
                changed = leaves(load_config(recipe, [f"{key}={json.dumps(new)}"]).to_dict())
            except ConfigError:
                continue  # not a valid value for this key; try the next
            differing = {k for k in base.keys() | changed.keys() if base.get(k) != changed.get(k)}
            assert differing == {key}, f"{recipe}: {key}={new!r} also changed {sorted(differing - {key})}"
            tested.append(key)
            break
    assert len(tested) >= 50, f"{recipe}: only {len(tested)} keys could be overridden: {tested}"


@pytest.mark.parametrize("recipe", list_recipes())
def test_switching_a_kind_keeps_every_key_outside_its_own(recipe):
    """optim.name / schedule.name / data.source: only the kind's own keys (and lr) may change."""
    cfg = load_config(recipe)
    for override, section, allowed in [
        ("optim.name=adam", "optim", {"name", "lr", "beta1", "beta2", "eps", "momentum", "nesterov", "rho",
                                      "weight_decay", "per_1024",
                                      "eps_inside_sqrt"}),
        ("schedule.name=step", "schedule", {"name", "step_epochs", "gamma", "pct_start", "div_factor",
                                            "final_div_factor", "momentum_cycle"}),
    ]:
        before = cfg.to_dict()
        after = load_config(recipe, [override]).to_dict()
        assert {k: v for k, v in before.items() if k != section} == {k: v for k, v in after.items() if k != section}
        kept = {k for k in before[section] if k not in allowed}
        assert {k: before[section][k] for k in kept} == {k: after[section][k] for k in kept}, override
