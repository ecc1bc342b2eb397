"""The device loader: the whole dataset lives on the training device; batches are slices.

This is Theano's "shared dataset + givens" idea (seeds/000 appendix B) and airbench's loader:
no per-example Python, no host->device copy per step.  Per epoch the only host work is one
``randperm``; per step, one gather on the device.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator

import torch

from cnnlab.data.dataset import ArrayDataset

Transform = Callable[[torch.Tensor], torch.Tensor]


class DeviceLoader:
    """Iterate over ``(x, y)`` mini-batches of a dataset already on the training device.

    ``preprocess`` maps stored images (uint8/float16) to the float network input; ``augment``
    (training only) transforms whole float batches on the device. With ``shuffle`` the order
    is a permutation drawn from ``generator`` (a CPU generator, for repeatability).
    """

    def __init__(self, data: ArrayDataset, batch_size: int, *, shuffle: bool = False,
                 preprocess: Transform | None = None, augment: Transform | None = None,
                 drop_last: bool = False):
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.preprocess = preprocess
        self.augment = augment
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.data)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def iterate(self, generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n, device = len(self.data), self.data.images.device
        order = torch.randperm(n, generator=generator).to(device) if self.shuffle else None
        for i in range(len(self)):
            if order is None:
                x = self.data.images[i * self.batch_size:(i + 1) * self.batch_size]
                y = self.data.labels[i * self.batch_size:(i + 1) * self.batch_size]
            else:
                index = order[i * self.batch_size:(i + 1) * self.batch_size]
                x, y = self.data.images[index], self.data.labels[index]
            if self.preprocess is not None:
                x = self.preprocess(x)
            if self.augment is not None:
                x = self.augment(x)
            yield x, y

    def __iter__(self):
        return self.iterate()
