"""The ``pretrain:`` section: greedy layer-wise pre-training of a deep belief net (seeds/001)
before the usual supervised training. Torch-free: config validation reads it.

``pretrain: dbn`` is short for ``{method: dbn}``. The network's hidden fully connected layers,
from the bottom, each become the weights of one RBM trained on the layer's input
(:mod:`cnnlab.train.pretrain`); each must be followed by a sigmoid, whose output is the next
RBM's data (``P(h = 1 | v)``, the RBM's hidden probabilities).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cnnlab.configbase import Section
from cnnlab.errors import ConfigError


class PretrainConfig(Section):
    method: Literal["none", "dbn"] = Field(
        "none", description="none, or dbn: stacked RBMs pre-train the hidden fc layers (greedy, bottom up)")
    layers: int | None = Field(
        None, ge=1, description="hidden fc layers pre-trained, from the bottom; None = every fc but the output")
    visible: Literal["binary", "gaussian"] = Field(
        "binary", description="the first RBM's visible units: binary (inputs in [0, 1]: data.normalize "
                              "scale) or gaussian (unit variance: standardized inputs); the others are binary")
    algorithm: Literal["cd", "pcd"] = Field(
        "cd", description="cd: contrastive divergence, chains start at the data; pcd: persistent particles")
    k: int | dict[int, int] = Field(
        1, description="Gibbs steps per update: a number, or {from_epoch: k} (e.g. {1: 1, 8: 3}: 1 step, "
                       "3 from epoch 8 on; seeds/001: 1, then 2-5 towards the end)")
    particles: int = Field(100, ge=1, description="pcd: persistent particles (seeds/001: ~100)")
    epochs: int = Field(5, ge=1, description="passes over the training split per RBM")
    batch_size: int = Field(20, ge=1, description="examples per RBM update")
    lr: float = Field(0.05, gt=0, description="learning rate of the RBM's gradient ascent")
    momentum: float = Field(0.5, ge=0, lt=1, description="momentum of the RBM updates")
    l2: float = Field(0.0, ge=0, description="weight decay on the RBM's weights (not its biases)")
    monitor_size: int = Field(
        1000, ge=1, description="training examples the monitors (reconstruction error, pseudo-likelihood) use")

    @field_validator("k")
    @classmethod
    def _positive_steps(cls, value):
        steps = {1: value} if isinstance(value, int) else value
        if not steps or any(e < 1 or k < 1 for e, k in steps.items()):
            raise ValueError(f"pretrain.k: Gibbs steps and epochs start at 1, got {value}")
        return value


def dbn_layers(specs, layers: int | None) -> list[int]:
    """Top-level indices of the fc layers ``pretrain`` trains as RBMs (``specs``: a parsed
    ``model.arch``); ConfigError when the network is not a sigmoid MLP stack there."""
    fcs = [i for i, s in enumerate(specs) if s.kind == "fc"]
    hidden = fcs[:-1]  # the output layer is never an RBM: it has no sigmoid units to model
    if not hidden:
        raise ConfigError("pretrain.method=dbn needs hidden fc layers (e.g. model.arch='fc500 sigmoid "
                          "fc500 sigmoid fc'); this network has none below its output layer")
    if layers is not None and layers > len(hidden):
        raise ConfigError(f"pretrain.layers={layers}: the network has {len(hidden)} hidden fc layer(s)")
    chosen = hidden[:layers] if layers is not None else hidden
    for i in chosen:
        after = next((s for s in specs[i + 1:] if s.kind != "dropout"), None)
        if after is None or after.kind != "sigmoid":
            raise ConfigError(f"pretrain.method=dbn: layer {i + 1} '{specs[i].token}' must be followed by "
                              f"'sigmoid' (an RBM's hidden units are P(h = 1 | v) = s(W^T v + c)), "
                              f"got '{after.token if after else 'nothing'}'")
    return chosen
