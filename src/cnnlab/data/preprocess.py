"""Preprocessing fitted on the training split, stored with the run, applied on the device.

Each step is an ``nn.Module`` whose fitted statistics are buffers, so ``state_dict()`` stores
them in the checkpoint and ``evaluate``/``predict`` apply exactly what training applied.
Steps run on whole batches, after the uint8 -> float conversion.
"""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.registry import Registry

PREPROCESSORS: Registry = Registry("preprocessing")


class Preprocess(nn.Module):
    """Base: ``fit(images)`` on the training images, then ``forward(batch)``."""

    def fit(self, images: torch.Tensor) -> "Preprocess":
        return self


@PREPROCESSORS.register("none")
class Identity(Preprocess):
    """x -> x (as float)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


@PREPROCESSORS.register("scale")
class Scale(Preprocess):
    """x -> x / 255 for uint8 images (pixel values into [0, 1]); float images pass through."""

    def __init__(self):
        super().__init__()
        self.register_buffer("divisor", torch.tensor(1.0))

    def fit(self, images: torch.Tensor) -> "Scale":
        self.divisor.fill_(255.0 if images.dtype == torch.uint8 else 1.0)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / self.divisor


@PREPROCESSORS.register("standardize")
class Standardize(Preprocess):
    """Per-channel standardisation (cs231n "normalisation"; the VGG per-channel mean):

        x'_c = (x_c - mu_c) / sigma_c,   mu_c, sigma_c over all training pixels of channel c.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    def fit(self, images: torch.Tensor) -> "Standardize":
        # Chunked float64 sums: exact enough and no full float copy of the dataset.
        c = images.shape[1]
        total = torch.zeros(c, dtype=torch.float64)
        total_sq = torch.zeros(c, dtype=torch.float64)
        for chunk in images.split(4096):
            x = chunk.to("cpu", torch.float64)
            total += x.sum(dim=(0, 2, 3))
            total_sq += (x * x).sum(dim=(0, 2, 3))
        count = images.shape[0] * images.shape[2] * images.shape[3]
        mean = total / count
        std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
        self.mean.copy_(mean.view(1, c, 1, 1))
        self.std.copy_(std.view(1, c, 1, 1))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean) / self.std


def build_preprocess(name: str, channels: int) -> Preprocess:
    cls = PREPROCESSORS.get(name)
    return cls(channels) if cls is Standardize else cls()
