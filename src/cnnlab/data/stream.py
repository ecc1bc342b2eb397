"""Streaming for image folders that do not fit in memory (``data.loader: stream``).

The folder is scanned, not decoded: :class:`LazyImages` stands in for the ``N x C x H x W``
uint8 tensor of :class:`~cnnlab.data.dataset.ArrayDataset` (subsets stay lazy; indexing
decodes). :class:`StreamingLoader` has the :class:`~cnnlab.data.loader.DeviceLoader`
interface: the same epoch order (so runs are reproducible and resumable alike), whole batches
decoded by a pool of worker processes (``data.workers``), then moved to the device,
preprocessed and augmented there exactly as the device loader does.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from cnnlab.data.dataset import ArrayDataset
from cnnlab.data.decode import decode_image
from cnnlab.data.loader import DeviceLoader
from cnnlab.errors import DataError


def decode_batch(readers: Sequence, origins: Sequence[str], shape: tuple[int, int, int],
                 channels: int | None) -> torch.Tensor:
    """Decode images to a ``len x C x H x W`` uint8 tensor, checking each against ``shape``."""

    out = np.empty((len(readers), *shape), dtype=np.uint8)
    for i, (read, origin) in enumerate(zip(readers, origins)):
        array = decode_image(read(), origin, channels)
        if array.shape != (shape[1], shape[2], shape[0]):
            raise DataError(f"{origin}: image is {array.shape[1]}x{array.shape[0]} with {array.shape[2]} "
                            f"channel(s) but the dataset's images are {shape[2]}x{shape[1]} with {shape[0]}")
        out[i] = array.transpose(2, 0, 1)
    return torch.from_numpy(out)


class LazyImages:
    """Images decoded on access. ``x[index]`` decodes (onto ``device``); ``subset`` does not."""

    dtype = torch.uint8
    ndim = 4

    def __init__(self, readers: list, origins: list[str], shape: tuple[int, int, int],
                 channels: int | None, device: torch.device | str = "cpu"):
        self.readers, self.origins = readers, origins
        self.image_shape, self.channels = tuple(shape), channels
        self.device = torch.device(device)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.readers), *self.image_shape))

    def __len__(self) -> int:
        return len(self.readers)

    def _positions(self, index) -> list[int]:
        if isinstance(index, slice):
            return list(range(len(self)))[index]
        if isinstance(index, int):
            return [index]
        index = torch.as_tensor(index).cpu()
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        return index.tolist()

    def subset(self, index) -> "LazyImages":
        positions = self._positions(index)
        return LazyImages([self.readers[i] for i in positions], [self.origins[i] for i in positions],
                          self.image_shape, self.channels, self.device)

    def __getitem__(self, index) -> torch.Tensor:
        part = self.subset(index)
        return decode_batch(part.readers, part.origins, self.image_shape, self.channels).to(self.device)

    def split(self, size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(self), size):
            yield self[slice(start, start + size)]

    def to(self, device=None, dtype=None, **kwargs) -> "LazyImages":
        # The stored dtype stays uint8: images are decoded per batch, never stored on the device.
        return LazyImages(self.readers, self.origins, self.image_shape, self.channels,
                          device if device is not None else self.device)

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} x {self.image_shape}, device={self.device})"


class _BatchDecoder(torch.utils.data.Dataset):
    """``dataset[batch_index]`` -> the decoded uint8 batch (runs in a worker process)."""

    def __init__(self, images):
        self.images = images.to("cpu") if isinstance(images, LazyImages) else images.cpu()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index]


class StreamingLoader(DeviceLoader):
    """:class:`DeviceLoader`'s interface over images decoded by ``workers`` processes."""

    def __init__(self, data: ArrayDataset, batch_size: int, *, workers: int = 2, **kwargs):
        super().__init__(data, batch_size, **kwargs)
        self.workers = workers

    def iterate(self, generator: torch.Generator | None = None, epoch: int = 0):
        device = self.data.labels.device
        order = self.epoch_order(generator)
        if order is None:
            order = torch.arange(len(self.data))
        batches = [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(len(self))]
        decoded = torch.utils.data.DataLoader(
            _BatchDecoder(self.data.images), batch_size=None, sampler=batches,
            num_workers=self.workers, pin_memory=device.type == "cuda",
            # Its own generator: drawing worker seeds from the global RNG would shift the
            # augmentation's random numbers away from the device loader's.
            generator=torch.Generator().manual_seed(0))
        for index, x in zip(batches, decoded):
            index = index.to(device)
            x, y = x.to(device, non_blocking=True), self.data.labels[index]
            yield self.transform(x, index, 0, epoch), y
