"""Test helpers: writing IDX files and small configs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from cnnlab.data.idx import read_idx
from cnnlab.data.sources import BUNDLED_DIR, IDX_FILES


def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_subset(folder: Path, n_train: int, n_test: int) -> None:
    """Copy the first examples of the bundled MNIST into ``folder`` as gzipped IDX files."""
    src = BUNDLED_DIR / "mnist"
    counts = {"train": n_train, "t10k": n_test}
    for stem in IDX_FILES.values():
        array = read_idx(src / (stem + ".gz"))[: counts[stem.split("-")[0]]]
        (folder / (stem + ".gz")).write_bytes(gzip.compress(idx_bytes(array)))


def tiny_overrides(folder: Path, runs: Path, **extra) -> list[str]:
    """Overrides for a seconds-long run on the tiny IDX folder."""
    base = {"data.source": "idx", "data.path": str(folder), "data.val_size": 500,
            "runs_dir": str(runs), "train.epochs": 2, "train.batch_size": 50, "device": "cpu"}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


def interrupt_in_epoch(epoch: int):
    """A callback that simulates Ctrl-C part-way through epoch ``epoch + 1`` (exact-resume tests)."""
    from cnnlab.train.callbacks import Callback

    class InterruptInEpoch(Callback):
        def on_interval(self, trainer):
            if trainer.epoch == epoch:
                raise KeyboardInterrupt

    return InterruptInEpoch()
