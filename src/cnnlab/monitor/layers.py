"""Naming the layers a person wants to watch: parametric layers (conv, fc, ...) and
nonlinearities (ReLU, tanh, sigmoid), in forward order, with short readable names.

A model from the zoo is an arbitrary ``nn.Module``; the monitor finds

- *parametric layers*: modules owning a trainable ``weight`` directly (kind from
  :data:`PARAM_KINDS`, else the class name);
- *activation layers*: modules of a kind in :data:`WATCHED_ACTIVATIONS` (the nonlinearities whose
  units can die or saturate), matched by class (torch's own) or by class name (so a zoo's own
  ``Sigmoid`` module counts too). Not the spec language's ``models.spec.ACTIVATION_KINDS``: that is
  every element-wise nonlinearity a spec can name; these are the ones worth watching.

Names: a :class:`cnnlab.models.Network` names its layers ``conv1``, ``tanh1``, ``fc2``,
``res1.body.conv1`` (as ``cnnlab summary`` prints them), and those names are kept; modules
without a name of their own (``nn.Sequential`` indices) are named kind + count (``conv1``...).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

#: module class -> short kind used in layer names
PARAM_KINDS: dict[type, str] = {
    nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Conv3d: "conv", nn.Linear: "fc",
    nn.BatchNorm1d: "bn", nn.BatchNorm2d: "bn", nn.LayerNorm: "ln", nn.PReLU: "prelu",
}

#: The activations the monitor watches, kind -> torch classes of that kind: their units can die
#: or saturate. ReLU units can die (always 0); tanh and sigmoid units can saturate (gradient ~0;
#: seeds/002 "Saturated neurons kill the gradients").
WATCHED_ACTIVATIONS: dict[str, tuple[type, ...]] = {
    "relu": (nn.ReLU, nn.ReLU6),
    "tanh": (nn.Tanh,),
    "sigmoid": (nn.Sigmoid,),
}


@dataclass
class Layer:
    name: str          # conv1, fc2, tanh1 ...
    kind: str          # conv, fc, bn / relu, tanh, sigmoid
    qualname: str      # the module's path in the model ("features.0"), for error messages
    module: nn.Module

    @property
    def weight(self):
        return self.module.weight

    def __repr__(self) -> str:
        return f"Layer({self.name} = {self.qualname or '<root>'}: {type(self.module).__name__})"


def _name(counts: dict[str, int], kind: str, qualname: str) -> str:
    counts[kind] = counts.get(kind, 0) + 1
    own = qualname.rsplit(".", 1)[-1]
    if own and not own.isdigit():  # a named attribute: the model's own name for the layer
        return qualname
    return f"{kind}{counts[kind]}"


def param_kind(module: nn.Module) -> str:
    for cls, kind in PARAM_KINDS.items():
        if isinstance(module, cls):
            return kind
    return type(module).__name__.lower()


def parametric_layers(model: nn.Module) -> list[Layer]:
    """Modules with their own trainable weight tensor, in definition order."""
    counts: dict[str, int] = {}
    layers = []
    for qualname, module in model.named_modules():
        weight = module._parameters.get("weight")
        if weight is None or not weight.requires_grad:
            continue
        kind = param_kind(module)
        layers.append(Layer(_name(counts, kind, qualname), kind, qualname, module))
    return layers


def activation_kind(module: nn.Module) -> str | None:
    for kind, classes in WATCHED_ACTIVATIONS.items():
        if isinstance(module, classes) or type(module).__name__.lower() == kind:
            return kind
    return None


def activation_layers(model: nn.Module) -> list[Layer]:
    """Nonlinearity modules whose units can die or saturate, in definition order."""
    counts: dict[str, int] = {}
    layers = []
    for qualname, module in model.named_modules():
        kind = activation_kind(module)
        if kind is not None:
            layers.append(Layer(_name(counts, kind, qualname), kind, qualname, module))
    return layers
