"""Arrays in a NumPy ``.npz`` or an HDF5 file: images + labels, any channel count,
uint8 or float.

Expected keys (the first present of each pair): ``x_train``/``train_images``,
``y_train``/``train_labels``, ``x_test``/``test_images``, ``y_test``/``test_labels``, and
optionally ``classes`` (names). Images are ``N x H x W`` (one channel), ``N x C x H x W`` or
``N x H x W x C`` (``data.layout``; ``auto`` takes the smaller of axes 1 and 3 as channels).
uint8 images stay uint8; other dtypes become float32 (``normalize: scale`` passes them through).
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits, infer_classes
from cnnlab.data.limits import check_fits
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
    with np.errstate(over="ignore"):  # values beyond float32 become inf: check_labels names them
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
        names = np.asarray(get("classes"))
        if names.ndim != 1:
            raise DataError(f"{name}: 'classes' must be a list of names, got shape {names.shape}")
        classes = [c.decode(errors="replace") if isinstance(c, bytes) else str(c) for c in names.tolist()]
    else:
        classes = infer_classes(parts["train"].labels.numpy(), parts["test"].labels.numpy())
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
        check_fits(_npz_declared_bytes(path), str(path), "its arrays")
        with np.load(path, allow_pickle=False) as data:
            return splits_from_mapping(lambda k: data[k], list(data.files), cfg, str(path))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable .npz ({exc})") from None


def _npz_declared_bytes(path: Path) -> int:
    """Bytes the arrays of an .npz declare in their headers (read before any array is)."""
    if not zipfile.is_zipfile(path):
        return 0  # a bare .npy, or not an .npz at all: np.load says which
    total = 0
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                shape, _, dtype = (np.lib.format.read_array_header_1_0(f) if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0(f))
            total += math.prod(shape) * dtype.itemsize
    return total


@SOURCES.register("hdf5", "h5")
def hdf5_source(cfg: DataConfig) -> DatasetSplits:
    """An HDF5 file at ``data.path`` with the datasets named above at its root."""
    import h5py

    path = _path(cfg, "HDF5")
    try:
        with h5py.File(path, "r") as f:
            keys = list(f.keys())
            total = 0
            for key in keys:
                if key in _WANTED:
                    total += hdf5_dataset(f, key, path, cfg.hdf5_links).nbytes
            check_fits(total, str(path), "its datasets")
            return splits_from_mapping(lambda k: hdf5_dataset(f, k, path, cfg.hdf5_links)[()], keys, cfg, str(path))
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({exc})") from None


_WANTED = {k for pair in KEYS.values() for k in pair} | {"classes"}


def hdf5_dataset(f, key: str, path: Path, follow_links: bool):
    """``f[key]``, a dataset, refusing links unless ``data.hdf5_links`` (they read other files).
    (Also the check of the jets files of :mod:`cnnlab.physics.store`.)"""
    import h5py

    link = f.get(key, getlink=True)
    if link is None:
        raise DataError(f"{path}: has no '{key}'")
    if not isinstance(link, h5py.HardLink) and not follow_links:
        target = f" to {link.filename}:{link.path}" if isinstance(link, h5py.ExternalLink) else \
            f" to {link.path}" if isinstance(link, h5py.SoftLink) else ""
        raise DataError(f"{path}: '{key}' is a link ({type(link).__name__}{target}); links in dataset files are "
                        "refused (set data.hdf5_links=true to follow them)")
    try:
        node = f[key]
    except KeyError as exc:
        raise DataError(f"{path}: '{key}' cannot be opened ({exc}); a broken link?") from None
    if not isinstance(node, h5py.Dataset):
        raise DataError(f"{path}: '{key}' is a {type(node).__name__}, not a dataset")
    if (node.is_virtual or node.external) and not follow_links:
        raise DataError(f"{path}: '{key}' is a {'virtual' if node.is_virtual else 'external-storage'} "
                        "dataset (its data lives in other files); refused (set data.hdf5_links=true to read it)")
    return node
