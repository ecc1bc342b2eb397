"""The model zoo: named architectures of the seeds, each adapting to the input shape and
number of classes. Select one with ``model: NAME`` in the config."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.registry import Registry

MODELS: Registry = Registry("model")


def _flat_size(features: nn.Module, input_shape: tuple[int, int, int]) -> int:
    with torch.no_grad():
        return int(features(torch.zeros(1, *input_shape)).numel())


@MODELS.register("lenet5")
def lenet5(input_shape: tuple[int, int, int], num_classes: int) -> nn.Sequential:
    """LeNet-5 as in seeds/000 s.1 (the Theano tutorial's LeNetConvPoolLayer network):

    conv 5x5-20, maxpool 2, conv 5x5-50, maxpool 2, fc 500, softmax; all units tanh.
    Weights Glorot-uniform (sqrt(6/(fan_in+fan_out))), biases zero, as in the tutorial.
    """
    channels = input_shape[0]
    features = nn.Sequential(
        nn.Conv2d(channels, 20, 5), nn.MaxPool2d(2), nn.Tanh(),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Tanh(),
        nn.Flatten(),
    )
    model = nn.Sequential(
        *features,
        nn.Linear(_flat_size(features, input_shape), 500), nn.Tanh(),
        nn.Linear(500, num_classes),
    )
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)
    return model
