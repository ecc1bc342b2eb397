"""Test-time augmentation (``train.tta``, ``cnnlab evaluate --tta``), airbench94's: the logits
of a batch are averaged over views of its images, made on the stored images before
preprocessing (as the training augmentation is)::

    flip(x)            = 1/2 f(x) + 1/2 f(mirror(x))                      (tta_level 1)
    flip_translate(x)  = 1/2 flip(x) + 1/4 flip(t(x, -1)) + 1/4 flip(t(x, +1))  (tta_level 2)

``mirror`` flips left-right; ``t(x, d)`` moves the image by one pixel along both axes
(``d = -1``: the crop [0:H, 0:W] of the image reflect-padded by 1, i.e. content moves down
and right; ``+1``: the crop [2:H+2, 2:W+2]). Six forward passes per image in all, weighted
1/4 (plain, mirrored) and 1/8 (each translated one); ``f`` is preprocessing then the network.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

TTA_LEVELS = ("none", "flip", "flip_translate")


def translate_one(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Move N x C x H x W images by one pixel along both axes, reflect-filling the border."""
    h, w = x.shape[-2:]
    padded = F.pad(x.float(), (1, 1, 1, 1), mode="reflect")
    lo = 1 + shift
    return padded[..., lo:lo + h, lo:lo + w]


def tta_logits(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, level: str) -> torch.Tensor:
    """Averaged logits of ``forward`` (stored images -> logits) over the views of ``level``."""
    if level not in TTA_LEVELS:
        raise ValueError(f"test-time augmentation '{level}': one of {', '.join(TTA_LEVELS)}")

    def mirrored(images: torch.Tensor) -> torch.Tensor:
        return 0.5 * forward(images).float() + 0.5 * forward(images.flip(-1)).float()

    if level == "none":
        return forward(x).float()
    logits = mirrored(x)
    if level == "flip":
        return logits
    moved = 0.5 * mirrored(translate_one(x, -1)) + 0.5 * mirrored(translate_one(x, 1))
    return 0.5 * logits + 0.5 * moved
