"""Plain-data containers that cross the data -> train boundary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from cnnlab.errors import DataError


@dataclass
class ArrayDataset:
    """Images ``N x C x H x W`` (uint8 or float) and integer labels ``N``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        if self.images.ndim != 4:
            raise DataError(f"images must be N x C x H x W, got shape {tuple(self.images.shape)}")
        if self.labels.ndim != 1 or len(self.labels) != len(self.images):
            raise DataError(f"{len(self.images)} images but labels of shape {tuple(self.labels.shape)}")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: torch.Tensor | slice) -> "ArrayDataset":
        # Lazily decoded images (data.loader: stream) subset without decoding.
        images = self.images.subset(index) if hasattr(self.images, "subset") else self.images[index]
        return ArrayDataset(images, self.labels[index])

    def to(self, device: torch.device | str) -> "ArrayDataset":
        return ArrayDataset(self.images.to(device), self.labels.to(device))


@dataclass
class DatasetSplits:
    """What every source returns: train/test (and, after splitting, validation) plus metadata."""

    train: ArrayDataset
    test: ArrayDataset
    classes: list[str]
    val: ArrayDataset | None = None
    extras: dict = field(default_factory=dict)  # per-example side information (e.g. jet features)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def check_labels(self, name: str) -> None:
        """The checks every source ends with: both splits non-empty, labels within the classes,
        every class (so every test class) present in train, float pixels finite."""
        for split_name in ("train", "test"):
            if len(getattr(self, split_name)) == 0:
                raise DataError(f"{name}: the {split_name} split is empty (0 examples)")
        for split_name in ("train", "val", "test"):
            split = getattr(self, split_name)
            if split is None or len(split) == 0:
                continue
            lo, hi = int(split.labels.min()), int(split.labels.max())
            if lo < 0 or hi >= self.num_classes:
                raise DataError(f"{name}: {split_name} labels span {lo}..{hi} but there are "
                                f"{self.num_classes} classes ({_listed(self.classes)})")
        present = torch.bincount(self.train.labels, minlength=self.num_classes) > 0
        if not bool(present.all()):
            absent = [self.classes[i] for i in torch.nonzero(~present).flatten().tolist()]
            in_test = sorted(set(self.test.labels.unique().tolist()) & {self.classes.index(c) for c in absent})
            why = (f"test labels {_listed([self.classes[i] for i in in_test])} never occur in train" if in_test
                   else "labels out of range or a class missing")
            raise DataError(f"{name}: {len(absent)} of {self.num_classes} classes have no training "
                            f"example ({_listed(absent)}): {why}; every class must be in the train split")
        for split_name in ("train", "test"):
            images = getattr(self, split_name).images
            if isinstance(images, torch.Tensor) and images.is_floating_point() and not bool(torch.isfinite(images).all()):
                bad = int(torch.nonzero(~torch.isfinite(images.flatten(1)).all(1))[0])
                raise DataError(f"{name}: {split_name} image {bad} has a non-finite pixel value "
                                f"(NaN or infinite{'' if images.dtype == torch.float64 else ', or too large for float32'})")


def infer_classes(*labels) -> list[str]:
    """``0 .. max label`` as class names (for sources that store no names)."""
    top = max((int(np.max(y)) for y in labels if len(y)), default=-1)
    return [str(i) for i in range(top + 1)]


def _listed(names, limit: int = 10) -> str:
    names = list(names)
    return ", ".join(map(str, names[:limit])) + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def split_validation(splits: DatasetSplits, val_size: int, seed: int) -> DatasetSplits:
    """Carve ``val_size`` examples out of train, with a fixed permutation (seeded)."""
    n = len(splits.train)
    if val_size >= n:
        raise DataError(f"data.val_size={val_size} leaves no training examples ({n} in train)")
    if val_size == 0:
        splits.val = None
        return splits
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    splits.val = splits.train.subset(order[n - val_size:].sort().values)
    splits.train = splits.train.subset(order[: n - val_size].sort().values)
    return splits
