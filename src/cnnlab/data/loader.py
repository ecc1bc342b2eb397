"""The device loader: the whole dataset lives on the training device; batches are slices.

This is Theano's "shared dataset + givens" idea (seeds/000 appendix B) and airbench's loader:
no per-example Python, no host->device copy per step.  Per epoch the only host work is one
``randperm``; per step, one gather on the device.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch

from cnnlab.data.augment import Augment
from cnnlab.data.dataset import ArrayDataset

Transform = Callable[[torch.Tensor], torch.Tensor]


class DeviceLoader:
    """Iterate over ``(x, y)`` mini-batches of a dataset already on the training device.

    ``preprocess`` maps stored images (uint8/float16) to the float network input; ``augment``
    (training only) transforms whole batches on the device (see :meth:`transform` for the
    order); an :class:`~cnnlab.data.augment.Augment` also receives the examples' indices and
    the epoch.
    With ``shuffle`` the order is a permutation drawn from ``generator`` (a CPU generator, for
    repeatability); with ``sample_weights`` (class-balanced sampling) it is ``len(data)``
    draws with replacement, example i drawn with probability proportional to its weight.
    """

    def __init__(self, data: ArrayDataset, batch_size: int, *, shuffle: bool = False,
                 preprocess: Transform | None = None, augment: Transform | None = None,
                 drop_last: bool = False, sample_weights: torch.Tensor | None = None):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.preprocess = preprocess
        self.augment = augment
        self.drop_last = drop_last
        self.sample_weights = None if sample_weights is None else sample_weights.double().cpu()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({len(self.data)} examples, batch {self.batch_size}, "
                f"shuffle={self.shuffle}, balanced={self.sample_weights is not None}, "
                f"augment={self.augment!r})")

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def epoch_order(self, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """This epoch's example order (CPU), or None for the stored order."""
        n = len(self.data)
        if self.sample_weights is not None:
            return torch.multinomial(self.sample_weights, n, replacement=True, generator=generator)
        return torch.randperm(n, generator=generator) if self.shuffle else None

    def iterate(self, generator: torch.Generator | None = None,
                epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.data.images.device
        order = self.epoch_order(generator)
        order = order.to(device) if order is not None else None
        for i in range(len(self)):
            lo, hi = i * self.batch_size, (i + 1) * self.batch_size
            if order is None:
                x, y = self.data.images[lo:hi], self.data.labels[lo:hi]
                index = None
            else:
                index = order[lo:hi]
                x, y = self.data.images[index], self.data.labels[index]
            yield self.transform(x, index, lo, epoch), y

    def transform(self, x: torch.Tensor, index: torch.Tensor | None, start: int, epoch: int) -> torch.Tensor:
        """Preprocess, then augment a stored batch. When the augmentation only moves pixels and
        the preprocessing is per-channel pointwise, the two commute exactly, so the cheaper
        order runs: augment the uint8 batch (1 byte a pixel), then preprocess. Preprocessing
        that stands for the network's first layer (patch_whiten) also comes after the
        augmentation (``Preprocess.augment_first``)."""
        if self.augment is None:
            return self.preprocess(x) if self.preprocess is not None else x
        early = (getattr(self.augment, "moves_pixels_only", False)
                 and getattr(self.preprocess, "augment_first", self.preprocess is None))
        if not early and self.preprocess is not None:
            x = self.preprocess(x)
        x = apply_augment(self.augment, x, index, start, epoch)
        if early and self.preprocess is not None:
            x = self.preprocess(x)
        return x

    def __iter__(self):
        return self.iterate()


def apply_augment(augment: Transform, x: torch.Tensor, index: torch.Tensor | None, start: int,
                  epoch: int) -> torch.Tensor:
    """Call ``augment`` with indices and epoch if it takes them (an ``Augment``), else plainly."""
    if isinstance(augment, Augment):
        if index is None:
            index = torch.arange(start, start + len(x), device=x.device)
        return augment(x, index, epoch)
    return augment(x)
