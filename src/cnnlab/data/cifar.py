"""CIFAR-10 (Krizhevsky 2009) in both official formats, read straight from the tarball.

- python batches (``cifar-10-python.tar.gz`` -> ``cifar-10-batches-py/data_batch_1..5``,
  ``test_batch``, ``batches.meta``): pickled dicts ``{data: uint8 N x 3072, labels: [int]}``,
  loaded with the restricted unpickler of :mod:`cnnlab.data.unpickle` (never runs code);
- binary batches (``cifar-10-binary.tar.gz`` -> ``cifar-10-batches-bin/data_batch_1..5.bin``,
  ``test_batch.bin``, ``batches.meta.txt``): records of 1 label byte + 3072 pixel bytes.

In both, an image's 3072 bytes are the red, green, then blue 32 x 32 planes (row-major), i.e.
already C x H x W. ``data.path`` may be the tarball, the extracted folder, or a folder holding
either; without it, ``$CNNLAB_DATA/cifar10`` (downloaded there if ``data.download``, from
https://www.cs.toronto.edu/~kriz/, md5-checked, atomically).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.archive import iter_members, is_archive
from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits
from cnnlab.data.download import download
from cnnlab.data.sources import SOURCES, cache_dir, mirrors
from cnnlab.data.unpickle import restricted_loads
from cnnlab.errors import DataError

CIFAR_MIRRORS = ("https://www.cs.toronto.edu/~kriz",)
#: Published md5 sums of the two official archives.
ARCHIVES = {
    "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a",
    "cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530",
}
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
RECORD = 1 + 3 * 32 * 32


def parse_pickle_batch(data: bytes, origin: str) -> tuple[np.ndarray, np.ndarray]:
    batch = restricted_loads(data, origin)
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise DataError(f"{origin}: not a CIFAR-10 batch (expected a dict with 'data' and 'labels')")
    images, labels = batch["data"], np.asarray(batch["labels"])
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 2
            and images.shape[1] == 3072):
        shape = getattr(images, "shape", type(images).__name__)
        raise DataError(f"{origin}: 'data' must be a uint8 N x 3072 array, got {shape}")
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
        raise DataError(f"{origin}: {len(images)} images but labels of shape {labels.shape}")
    return images.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def parse_bin_batch(data: bytes, origin: str) -> tuple[np.ndarray, np.ndarray]:
    if len(data) == 0 or len(data) % RECORD:
        raise DataError(f"{origin}: {len(data)} bytes is not a whole number of {RECORD}-byte CIFAR-10 "
                        "records; the file is truncated or corrupt")
    records = np.frombuffer(data, dtype=np.uint8).reshape(-1, RECORD)
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].astype(np.int64)


def _collect(path: Path) -> dict[str, tuple[bytes, str]]:
    """Basename -> (bytes, origin) of the CIFAR files under ``path`` (folder or tarball)."""
    wanted = set(TRAIN_BATCHES) | {"test_batch", "batches.meta"}
    wanted |= {w + ".bin" for w in TRAIN_BATCHES + ["test_batch"]} | {"batches.meta.txt"}
    found = {}
    for member in iter_members(path):
        if not member.is_dir and member.parts[-1] in wanted:
            found[member.parts[-1]] = (member.read(), member.origin)
    return found


def _splits(found: dict[str, tuple[bytes, str]], where: str) -> DatasetSplits:
    if all(name in found for name in TRAIN_BATCHES + ["test_batch"]):
        parse, suffix = parse_pickle_batch, ""
    elif all(name + ".bin" in found for name in TRAIN_BATCHES + ["test_batch"]):
        parse, suffix = parse_bin_batch, ".bin"
    else:
        missing = [n for n in TRAIN_BATCHES + ["test_batch"] if n not in found and n + ".bin" not in found]
        raise DataError(f"{where}: CIFAR-10 batches missing: {', '.join(missing)} (python or .bin format)")
    train = [parse(*found[name + suffix]) for name in TRAIN_BATCHES]
    test_x, test_y = parse(*found["test_batch" + suffix])
    splits = DatasetSplits(
        train=ArrayDataset(torch.from_numpy(np.concatenate([x for x, _ in train])),
                           torch.from_numpy(np.concatenate([y for _, y in train]))),
        test=ArrayDataset(torch.from_numpy(test_x), torch.from_numpy(test_y)),
        classes=list(CLASSES))
    splits.check_labels(where)
    return splits


def _verify_md5(expected: str):
    def verify(data: bytes) -> str | None:
        got = hashlib.md5(data).hexdigest()
        return None if got == expected else f"md5 {got} does not match the published {expected}"
    return verify


def _locate(folder: Path) -> Path | None:
    """The extracted batch folder or an official tarball inside ``folder``, if any."""
    for candidate in (folder, folder / "cifar-10-batches-py", folder / "cifar-10-batches-bin"):
        if (candidate / "data_batch_1").is_file() or (candidate / "data_batch_1.bin").is_file():
            return candidate
    for name in ARCHIVES:
        if (folder / name).is_file():
            return folder / name
    return None


@SOURCES.register("cifar10")
def cifar10_source(cfg: DataConfig) -> DatasetSplits:
    """CIFAR-10, 50,000 train / 10,000 test, 3 x 32 x 32 (see the module docstring)."""
    path = Path(cfg.path).expanduser() if cfg.path else cache_dir() / "cifar10"
    if path.is_file():
        if not is_archive(path):
            raise DataError(f"data.path={cfg.path}: not a .tar.gz archive or a folder of CIFAR-10 batches")
        return _splits(_collect(path), str(path))
    located = _locate(path) if path.is_dir() else None
    if located is None:
        if not cfg.download:
            raise DataError(f"{path}: no CIFAR-10 batches or archive there and data.download is false; "
                            f"put {' or '.join(ARCHIVES)} there")
        name = "cifar-10-python.tar.gz"
        located = download(name, mirrors("CNNLAB_CIFAR10_MIRRORS", CIFAR_MIRRORS), path / name,
                           _verify_md5(ARCHIVES[name]))
    return _splits(_collect(located), str(located))
