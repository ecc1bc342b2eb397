"""Dataset sources: a registry from names to loaders returning :class:`DatasetSplits`.

Each loader receives the ``data:`` config section and returns train/test splits with uint8
(or float) images in ``N x C x H x W`` and class names. Validation is carved afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits, infer_classes
from cnnlab.data.download import download
from cnnlab.data.idx import read_idx, sha256
from cnnlab.errors import DataError
from cnnlab.registry import Registry

SOURCES: Registry = Registry("dataset source")

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "_bundled"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

#: sha256 of the *decompressed* MNIST payloads (the .gz bytes differ between mirrors).
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}

MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist",
    "https://storage.googleapis.com/cvdf-datasets/mnist",
    "http://yann.lecun.com/exdb/mnist",
)


def cache_dir() -> Path:
    """Where downloaded datasets live: ``$CNNLAB_DATA`` or ``~/.cache/cnnlab``."""
    return Path(os.environ.get("CNNLAB_DATA", Path.home() / ".cache" / "cnnlab"))


def mirrors(env_var: str, defaults: tuple[str, ...]) -> list[str]:
    """Mirror list, overridable with a comma-separated environment variable (tests, proxies)."""
    value = os.environ.get(env_var)
    return [m for m in value.split(",") if m] if value else list(defaults)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _verify_mnist(stem: str):
    def verify(data: bytes) -> str | None:
        import gzip
        import zlib
        try:
            payload = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            return f"not a valid gzip file ({exc})"
        if sha256(payload) != MNIST_SHA256[stem]:
            return "checksum mismatch of the decompressed payload"
        return None

    return verify


def load_idx_folder(folder: Path, checksums: dict[str, str] | None = None,
                    fetch_missing=None) -> tuple[np.ndarray, ...]:
    """Read the four standard IDX files of ``folder`` (plain or .gz)."""
    arrays = []
    for stem in IDX_FILES.values():
        path = find_idx_file(folder, stem)
        if path is None and fetch_missing is not None:
            path = fetch_missing(stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem} (or {stem}.gz); an IDX dataset folder "
                            f"needs {', '.join(IDX_FILES.values())}")
        arrays.append(read_idx(path, (checksums or {}).get(stem)))
    return tuple(arrays)


def _splits_from_idx(arrays, name: str, classes: list[str] | None = None) -> DatasetSplits:
    train_x, train_y, test_x, test_y = arrays
    for split, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
        if x.ndim not in (3, 4):
            raise DataError(f"{name}: {split} images must have 3 (N,H,W) or 4 (N,H,W,C) dims, got {x.shape}")
        if len(x) != len(y):
            raise DataError(f"{name}: {len(x)} {split} images but {len(y)} labels")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{name}: {split} labels must be one integer per image, got shape "
                            f"{y.shape} dtype {y.dtype}")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise DataError(f"{name}: train images are {train_x.shape[1:]} but test images {test_x.shape[1:]}")

    def to_nchw(x: np.ndarray) -> torch.Tensor:
        # uint8 stays uint8; the other IDX types (int8/16/32, float32/64) become float32
        t = torch.from_numpy(np.array(x, copy=True, dtype=None if x.dtype == np.uint8 else np.float32))
        return t.unsqueeze(1) if t.ndim == 3 else t.permute(0, 3, 1, 2).contiguous()

    splits = DatasetSplits(
        train=ArrayDataset(to_nchw(train_x), torch.from_numpy(train_y.astype(np.int64, copy=True))),
        test=ArrayDataset(to_nchw(test_x), torch.from_numpy(test_y.astype(np.int64, copy=True))),
        classes=classes or infer_classes(train_y, test_y),
    )
    splits.check_labels(name)
    return splits


@SOURCES.register("idx")
def idx_source(cfg: DataConfig) -> DatasetSplits:
    """Any folder with the four MNIST-style IDX files (``data.path`` points at it)."""
    if cfg.path is None:
        raise DataError("data.source=idx needs data.path: a folder holding "
                        + ", ".join(IDX_FILES.values()))
    folder = Path(cfg.path).expanduser()
    if not folder.is_dir():
        raise DataError(f"data.path={cfg.path}: not a folder")
    return _splits_from_idx(load_idx_folder(folder), str(folder))


@SOURCES.register("mnist")
def mnist_source(cfg: DataConfig) -> DatasetSplits:
    """MNIST (LeCun et al. 1998): bundled with cnnlab; ``data.path`` or the cache otherwise.

    Missing files are downloaded from the public mirrors (if ``data.download``) and every
    file's decompressed payload is checked against its published sha256.
    """
    folder = Path(cfg.path).expanduser() if cfg.path else BUNDLED_DIR / "mnist"
    if cfg.path is None and not all(find_idx_file(folder, s) for s in IDX_FILES.values()):
        folder = cache_dir() / "mnist"

    def fetch_missing(stem: str) -> Path | None:
        if not cfg.download:
            return None
        return download(stem + ".gz", mirrors("CNNLAB_MNIST_MIRRORS", MNIST_MIRRORS),
                        folder / (stem + ".gz"), _verify_mnist(stem))

    arrays = load_idx_folder(folder, MNIST_SHA256, fetch_missing)
    return _splits_from_idx(arrays, "mnist", classes=[str(i) for i in range(10)])
