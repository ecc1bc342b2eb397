"""Arrays in a NumPy ``.npz`` or an HDF5 file: images + labels, any channel count,
uint8 or float.

Expected keys (the first present of each pair): ``x_train``/``train_images``,
``y_train``/``train_labels``, ``x_test``/``test_images``, ``y_test``/``test_labels``, and
optionally ``classes`` (names). Images are ``N x H x W`` (one channel), ``N x C x H x W`` or
``N x H x W x C`` (``data.layout``; ``auto`` takes the smaller of axes 1 and 3 as channels).
uint8 images stay uint8; other dtypes become float32 (``normalize: scale`` passes them through).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits
from cnnlab.data.sources import SOURCES
from cnnlab.errors import DataError

KEYS = {
    "train_images": ("x_train", "train_images"),
    "train_labels": ("y_train", "train_labels"),
    "test_images": ("x_test", "test_images"),
    "test_labels": ("y_test", "test_labels"),
}


def to_nchw(x: np.ndarray, layout: str, name: str) -> torch.Tensor:
    """``N x H x W`` / ``N x C x H x W`` / ``N x H x W x C`` -> a ``N x C x H x W`` tensor."""
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim != 4:
        raise DataError(f"{name}: images must have 3 (N,H,W) or 4 dimensions, got shape {x.shape}")
    elif layout == "nhwc" or (layout == "auto" and x.shape[3] < x.shape[1]):
        x = x.transpose(0, 3, 1, 2)
    if x.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(x))
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{name}: images have dtype {x.dtype}; expected uint8 or float")
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def to_labels(y: np.ndarray, name: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{name}: labels must be a 1-D integer array, got shape {y.shape} dtype {y.dtype}")
    return torch.from_numpy(y.astype(np.int64))


def splits_from_mapping(get, keys: list[str], cfg: DataConfig, name: str) -> DatasetSplits:
    """Build splits from a key -> array accessor (shared by .npz and HDF5)."""
    found = {}
    for role, candidates in KEYS.items():
        key = next((k for k in candidates if k in keys), None)
        if key is None:
            raise DataError(f"{name}: no '{candidates[0]}' (or '{candidates[1]}') array; the file "
                            f"holds {', '.join(sorted(keys)) or 'nothing'}")
        found[role] = get(key)
    parts = {}
    for split in ("train", "test"):
        images = to_nchw(np.asarray(found[f"{split}_images"]), cfg.layout, f"{name}:{split}")
        labels = to_labels(found[f"{split}_labels"], f"{name}:{split}")
        if len(images) != len(labels):
            raise DataError(f"{name}: {len(images)} {split} images but {len(labels)} labels")
        parts[split] = ArrayDataset(images, labels)
    if parts["train"].images.shape[1:] != parts["test"].images.shape[1:]:
        raise DataError(f"{name}: train images are {tuple(parts['train'].images.shape[1:])} (C,H,W) "
                        f"but test images {tuple(parts['test'].images.shape[1:])}")
    if "classes" in keys:
        classes = [c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(get("classes")).tolist()]
    else:
        classes = [str(i) for i in range(int(max(parts["train"].labels.max(), parts["test"].labels.max())) + 1)]
    splits = DatasetSplits(parts["train"], parts["test"], classes)
    splits.check_labels(name)
    return splits


def _path(cfg: DataConfig, kind: str) -> Path:
    if cfg.path is None:
        raise DataError(f"data.source={cfg.source} needs data.path: a {kind} file with "
                        "x_train, y_train, x_test, y_test")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"data.path={cfg.path}: no such file")
    return path


@SOURCES.register("npz")
def npz_source(cfg: DataConfig) -> DatasetSplits:
    """A NumPy ``.npz`` at ``data.path`` (read without pickle)."""
    path = _path(cfg, ".npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            return splits_from_mapping(lambda k: data[k], list(data.files), cfg, str(path))
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None


@SOURCES.register("hdf5", "h5")
def hdf5_source(cfg: DataConfig) -> DatasetSplits:
    """An HDF5 file at ``data.path`` with the datasets named above at its root."""
    import h5py

    path = _path(cfg, "HDF5")
    try:
        with h5py.File(path, "r") as f:
            return splits_from_mapping(lambda k: f[k][()], list(f.keys()), cfg, str(path))
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None
