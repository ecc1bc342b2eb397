"""Per-layer statistics of a network in training (cs231n "Babysitting the Learning Process"):

- gradient norm  ||dL/dW||_2 of each layer's weight: vanishing gradients show as norms that
  shrink toward the input (seeds/002: 0.003, 0.017, 0.070, 0.285 for a 4-layer sigmoid net);
- update-to-weight ratio  ||W_after - W_before||_2 / ||W_before||_2  of one optimizer step:
  about 1e-3 is healthy (cs231n); much larger means the learning rate is too high, much smaller
  too low. Measured on the real step, so it is right for every optimizer (momentum, Adam...);
- dead ReLU fraction: units (channels of a conv layer, features of an fc layer) whose output is
  0 for every example and position of a batch; such a unit gets no gradient and never recovers;
- saturated fraction: tanh outputs with |a| > 0.99 (tanh' = 1 - a^2 < 0.02) and sigmoid outputs
  with a < 0.01 or a > 0.99 (sigma' = a(1 - a) < 0.01): "saturated neurons kill the gradients".

Everything stays a device tensor until the caller reads it (one host sync per read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from cnnlab.monitor.layers import Layer, activation_layers

#: saturation test per activation kind (on the activation's output a)
SATURATED: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": lambda a: a.abs() > 0.99,
    "sigmoid": lambda a: (a < 0.01) | (a > 0.99),
}


def dead_units(a: torch.Tensor) -> torch.Tensor:
    """Bool per unit (dim 1): the output is <= 0 for every example and position."""
    per_unit = a.detach().transpose(0, 1).reshape(a.shape[1], -1)
    return ~(per_unit > 0).any(1)


#: dead-unit test per activation kind (units that cannot recover)
DEAD: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": dead_units}


def grad_norms(layers: list[Layer]) -> torch.Tensor:
    """||dL/dW|| per layer (0 where no gradient reached the weight)."""
    return torch.stack([w.grad.detach().float().norm() if w.grad is not None
                        else torch.zeros((), device=w.device) for w in (l.weight for l in layers)])


def weight_norms(layers: list[Layer]) -> torch.Tensor:
    return torch.stack([l.weight.detach().float().norm() for l in layers])


def update_ratios(layers: list[Layer], before: list[torch.Tensor]) -> torch.Tensor:
    """||W - W_before|| / ||W_before|| per layer (inf when W_before is all zero and W moved)."""
    return torch.stack([(l.weight.detach().float() - b).norm() / b.norm()
                        for l, b in zip(layers, before)])


def snapshot(layers: list[Layer]) -> list[torch.Tensor]:
    return [l.weight.detach().float().clone() for l in layers]


def identical_units(layer: Layer) -> bool:
    """True when every output unit (row / filter) of the layer has the same weights.

    Then every unit computes the same function and receives the same gradient, so gradient
    descent never makes them differ: the symmetry is never broken (seeds/003, cs231n "Pitfall:
    all zero initialization").
    """
    w = layer.weight.detach()
    if w.ndim < 2 or w.shape[0] < 2:
        return False
    return bool((w - w[:1]).abs().max() == 0)


@dataclass
class ActivationStats:
    name: str
    kind: str
    dead_fraction: float | None       # relu: fraction of units dead on the batch
    saturated_fraction: float | None  # tanh/sigmoid: fraction of outputs saturated
    mean: float
    std: float

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class ActivationRecorder:
    """Forward hooks on a model's nonlinearities collecting :class:`ActivationStats`.

    Use as a context manager around one forward pass; a module applied several times in one
    forward pass is summarised over all its calls.
    """

    def __init__(self, model: torch.nn.Module):
        self.layers = activation_layers(model)
        self._sums: dict[str, list[torch.Tensor]] = {}
        self._handles = []

    def __enter__(self) -> "ActivationRecorder":
        self._sums = {l.name: [] for l in self.layers}
        for layer in self.layers:
            self._handles.append(layer.module.register_forward_hook(self._hook(layer)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _hook(self, layer: Layer):
        def hook(module, inputs, output):
            a = output.detach().float()
            dead = DEAD[layer.kind](a).float().mean() if layer.kind in DEAD else torch.tensor(float("nan"))
            sat = (SATURATED[layer.kind](a).float().mean() if layer.kind in SATURATED
                   else torch.tensor(float("nan")))
            self._sums[layer.name].append(torch.stack([dead.to(a.device), sat.to(a.device),
                                                       a.mean(), a.std()]))
        return hook

    def stats(self) -> list[ActivationStats]:
        """Read the recorded statistics (one host sync)."""
        named = [(l, torch.stack(self._sums[l.name]).mean(0)) for l in self.layers if self._sums.get(l.name)]
        if not named:
            return []
        values = torch.stack([v for _, v in named]).tolist()
        out = []
        for (layer, _), (dead, sat, mean, std) in zip(named, values):
            out.append(ActivationStats(layer.name, layer.kind, None if dead != dead else dead,
                                       None if sat != sat else sat, mean, std))
        return out
