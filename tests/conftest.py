"""Shared fixtures. Real data comes from ../shared/datasets (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _few_threads_and_isolated_cache(monkeypatch, tmp_path_factory):
    torch.set_num_threads(2)
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not here")
    return SHARED


@pytest.fixture(scope="session")
def tiny_mnist_dir(tmp_path_factory) -> Path:
    """A small IDX folder (2,000 train / 500 test MNIST images) for fast end-to-end tests."""
    from tests.helpers import write_idx_subset

    folder = tmp_path_factory.mktemp("tiny-mnist")
    write_idx_subset(folder, n_train=2000, n_test=500)
    return folder
