"""Models: config -> ``nn.Module`` for a given input shape and number of classes.

The network outputs class scores (logits); the softmax lives in the loss.
"""

from __future__ import annotations

from torch import nn

from cnnlab.models.config import ModelConfig
from cnnlab.models.zoo import MODELS


def build_model(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    return MODELS.get(cfg.arch)(input_shape, num_classes)


__all__ = ["MODELS", "ModelConfig", "build_model"]
