"""The real test of the image-folder path: the shared CIFAR-10 JPEG archive loads as the
standard 50,000 / 10,000 split with its 10 class names, and a second load comes from the
decoded cache."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import load_config
from cnnlab.data import load_data

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def test_shared_cifar10_jpeg_archive_loads_as_cifar10(shared_datasets, monkeypatch):
    import cnnlab.data.folder as folder

    archive = shared_datasets / "cifar10-jpeg.tar.gz"
    cfg = load_config("convnet-cifar10", [f"data.path={archive}", "data.val_size=0"]).data
    splits = load_data(cfg)
    assert splits.classes == CLASSES
    assert len(splits.train) == 50_000 and len(splits.test) == 10_000 and splits.val is None
    assert splits.input_shape == (3, 32, 32) and splits.train.images.dtype == torch.uint8
    assert torch.bincount(splits.train.labels).tolist() == [5000] * 10
    assert torch.bincount(splits.test.labels).tolist() == [1000] * 10
    with tarfile.open(archive) as tf:  # the first test image of class 'ship', decoded directly
        member = next(m for m in tf if m.name.startswith("test/ship/") and m.isfile())
        first = np.asarray(Image.open(io.BytesIO(tf.extractfile(member).read())).convert("RGB"))
    ship = splits.test.images[splits.test.labels == CLASSES.index("ship")][0]
    assert torch.equal(ship, torch.from_numpy(first.copy()).permute(2, 0, 1))

    monkeypatch.setattr(folder, "decode_image", lambda *a: pytest.fail("decoded again, cache unused"))
    again = load_data(cfg)
    assert torch.equal(again.test.images, splits.test.images)
