"""Parameter groups with per-layer learning-rate multipliers (seeds/000: "we don't have to use
the same learning_rate for the parameters in each layer"; its input layers wanted bigger ones).

A *layer* is a module that owns parameters directly (a conv, a linear, a batch norm), named
as in ``model.named_modules()`` and numbered in that order from 0. ``optim.layer_lr`` maps a
layer index (``0``, ``-1`` for the last; digits always mean an index, so the unnamed
children of an ``nn.Sequential`` are selected by index), a name (``conv1``), a prefix
(``features`` selects ``features.0``, ``features.3``...) or a glob (``fc*``) to a multiplier. Each group carries
``lr_mult``; :class:`~cnnlab.optim.LRScheduler` sets ``lr = base_lr * lr_mult * schedule``.
"""

from __future__ import annotations

import fnmatch

from torch import nn

from cnnlab.errors import ConfigError


def parameter_layers(model: nn.Module) -> list[str]:
    """Names of the modules that own parameters directly, in order (index = layer index).

    Frozen layers (``model.freeze``) count too, so an index means the same layer whatever is
    frozen; their parameters simply join no group."""
    return [name for name, module in model.named_modules()
            if next(module.parameters(recurse=False), None) is not None]


def describe_layers(layers: list[str]) -> str:
    return ", ".join(f"{i}: {name or '(model)'}" for i, name in enumerate(layers))


def select_layers(key: str | int, layers: list[str]) -> list[str]:
    """The layers a ``layer_lr`` (or ``model.freeze``) key refers to (see the module docstring)."""
    text = str(key).strip()
    # Digits are an index even as a string: the saved config.yaml (JSON-mode dump) turns 0 into "0".
    if text.lstrip("-").isdigit():
        index = int(text)
        return [layers[index]] if -len(layers) <= index < len(layers) else []
    if text in layers:
        return [text]
    return [name for name in layers
            if name.startswith(text + ".") or fnmatch.fnmatchcase(name, text)]


def layer_multipliers(model: nn.Module, layer_lr: dict) -> dict[str, float]:
    """Layer name -> lr multiplier for the layers ``layer_lr`` selects (others are 1).

    Raises ConfigError naming the key and listing the layers when a key selects nothing, or
    when two keys give one layer different multipliers.
    """
    layers = parameter_layers(model)
    chosen: dict[str, tuple[str, float]] = {}
    for key, mult in layer_lr.items():
        selected = select_layers(key, layers)
        if not selected:
            raise ConfigError(f"optim.layer_lr: no layer '{key}' in {type(model).__name__}. "
                              f"Layers (index: name): {describe_layers(layers)}")
        for name in selected:
            if name in chosen and chosen[name][1] != mult:
                raise ConfigError(f"optim.layer_lr: layer '{name}' is selected by '{chosen[name][0]}' "
                                  f"(x{chosen[name][1]}) and by '{key}' (x{mult}); make them agree")
            chosen[name] = (str(key), float(mult))
    return {name: mult for name, (_, mult) in chosen.items()}


def param_groups(model: nn.Module, lr: float, layer_lr: dict | None = None, weight_decay: float = 0.0,
                 decay_all: bool = False) -> list[dict]:
    """Trainable parameters grouped by multiplier; the multiplier-1 group comes first.

    Each group: ``{"params", "names" (parameter names), "lr" (= base_lr x lr_mult), "base_lr", "lr_mult"}``.
    With ``weight_decay`` (the decay of one step, wd), the parameters it acts on (weights,
    ``ndim > 1``, or all with ``decay_all``) are grouped apart and their group carries torch's
    ``weight_decay = wd / (base_lr x lr_mult)``: torch adds it to the gradient and multiplies
    by the group's lr, so each step decays by ``wd x schedule``, whatever the multiplier
    (airbench94's ``weight_decay=wd/lr_biases`` for its 64x BN-bias rate).
    """
    mults = layer_multipliers(model, layer_lr or {})

    def new_group(mult: float, decays: bool) -> dict:
        group = {"params": [], "names": [], "lr": lr * mult, "base_lr": lr, "lr_mult": mult}
        if decays:
            group["weight_decay"] = weight_decay / (lr * mult)
        return group

    groups: dict[tuple[float, bool], dict] = {(1.0, False): new_group(1.0, False)}
    seen: set[int] = set()  # a parameter shared by two modules goes in one group only
    for layer, module in model.named_modules():
        for pname, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            mult = mults.get(layer, 1.0)
            decays = weight_decay > 0 and (decay_all or p.ndim > 1)
            # lr is already multiplied, so the multiplier holds without a scheduler too (sanity probe)
            group = groups.setdefault((mult, decays), new_group(mult, decays))
            group["params"].append(p)
            group["names"].append(f"{layer}.{pname}" if layer else pname)
    return [g for g in groups.values() if g["params"]]
