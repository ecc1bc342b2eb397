"""Trained runs for the reuse tests: a small network on MNIST digits 0-4 (the "pretrained"
source) and the digits 5-9 as the new task, both as .npz files cut from the bundled MNIST."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.config import load_config
from cnnlab.data.idx import read_idx
from cnnlab.data.sources import BUNDLED_DIR, IDX_FILES
from cnnlab.train import start_run

QUIET = dict(show_progress=False, echo=lambda line: None)
#: no padding and strict pooling, so FC-to-conv sliding is exactly the cs231n identity
SPEC = "conv5-8 relu pool2 conv5-16 relu pool2 fc32 relu fc"


def _mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    folder = BUNDLED_DIR / "mnist"
    return (read_idx(folder / (IDX_FILES[f"{split}_images"] + ".gz")),
            read_idx(folder / (IDX_FILES[f"{split}_labels"] + ".gz")))


def write_digits(path, digits: list[int], n_train: int, n_test: int) -> None:
    """An .npz of MNIST images of ``digits`` only, relabelled 0..len(digits)-1."""
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = _mnist(split)
        keep = np.flatnonzero(np.isin(labels, digits))[:n]
        out[f"x_{split}"] = images[keep]
        out[f"y_{split}"] = np.searchsorted(np.array(digits), labels[keep]).astype(np.int64)
    np.savez(path, **out, classes=np.array([str(d) for d in digits]))


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("digits")
    write_digits(folder / "low.npz", [0, 1, 2, 3, 4], 3000, 500)
    write_digits(folder / "high.npz", [5, 6, 7, 8, 9], 600, 500)
    return {"low": str(folder / "low.npz"), "high": str(folder / "high.npz")}


def overrides(data_path: str, runs, **extra) -> list[str]:
    base = {"data.source": "npz", "data.path": data_path, "data.val_size": 300, "runs_dir": str(runs),
            "model.arch": SPEC, "train.epochs": 2, "train.batch_size": 50, "device": "cpu",
            "monitor.sanity_at_start": "false", "optim.lr": 0.05}
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture(scope="session")
def pretrained_run(digits, tmp_path_factory):
    """The source network: trained on digits 0-4 (kept pristine: tests only read it)."""
    runs = tmp_path_factory.mktemp("pretrained")
    cfg = load_config(None, overrides(digits["low"], runs))
    return start_run(cfg, **QUIET).fit().run_dir
