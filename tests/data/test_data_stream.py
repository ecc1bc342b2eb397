"""The streaming loader: same batches as the device loader (order, preprocessing and
augmentation), images decoded in worker processes, lazily subset, and a training run on it."""

from __future__ import annotations

import io
import tarfile
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import load_config
from cnnlab.data import build_train_loader, fit_preprocess, load_data
from cnnlab.data.stream import LazyImages, StreamingLoader
from cnnlab.errors import DataError

AUG = "data.augment=[{crop: {padding: 2}}, alternating_flip]"


def image_files(n_per_class=12):
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", n_per_class), ("test", 4)):
        for c in ("a", "b", "c"):
            for i in range(n):
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, format="PNG")
                files[f"{split}/{c}/{i:02d}.png"] = buf.getvalue()
    return files


@pytest.fixture(params=["dir", "zip", "tar"])
def folder(request, tmp_path):
    files = image_files()
    if request.param == "dir":
        for name, data in files.items():
            (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "d" / name).write_bytes(data)
        return tmp_path / "d"
    if request.param == "zip":
        with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
        return tmp_path / "d.zip"
    with tarfile.open(tmp_path / "d.tar", "w") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return tmp_path / "d.tar"


def cfg_for(path, loader, *extra):
    return load_config(None, ["data.source=folder", f"data.path={path}", "data.val_size=6",
                              f"data.loader={loader}", "data.workers=2", AUG, *extra]).data


def test_streaming_batches_equal_device_batches(folder):
    stream_cfg, device_cfg = cfg_for(folder, "stream"), cfg_for(folder, "device")
    lazy, eager = load_data(stream_cfg, seed=3), load_data(device_cfg, seed=3)
    assert isinstance(lazy.train.images, LazyImages) and len(lazy.train) == len(eager.train) == 30
    assert torch.equal(lazy.val.images[torch.arange(6)], eager.val.images)
    pre_lazy, pre_eager = fit_preprocess(stream_cfg, lazy), fit_preprocess(device_cfg, eager)
    torch.testing.assert_close(pre_lazy.state_dict(), pre_eager.state_dict())
    streaming = build_train_loader(stream_cfg, lazy.train, 8, pre_lazy, 3)
    device = build_train_loader(device_cfg, eager.train, 8, pre_eager, 3)
    assert isinstance(streaming, StreamingLoader) and len(streaming) == len(device) == 4
    for epoch in (0, 1):
        torch.manual_seed(epoch)
        a = list(streaming.iterate(torch.Generator().manual_seed(epoch), epoch=epoch))
        torch.manual_seed(epoch)
        b = list(device.iterate(torch.Generator().manual_seed(epoch), epoch=epoch))
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(ya, yb) and torch.equal(xa, xb)


def test_training_run_streams_and_evaluates(tmp_path):
    from cnnlab.train import start_run

    files = image_files(n_per_class=20)
    for name, data in files.items():
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_bytes(data)
    cfg = load_config(None, ["data.source=folder", f"data.path={tmp_path / 'd'}", "data.val_size=6",
                             "data.loader=stream", "data.workers=1", "model=logreg", "train.epochs=1",
                             "train.batch_size=10", f"runs_dir={tmp_path / 'runs'}", "device=cpu"])
    trainer = start_run(cfg, show_progress=False, echo=lambda line: None)
    result = trainer.fit()
    assert result.steps == 6 and 0 <= result.test_acc <= 1  # 54 train / 10 per batch


def test_compressed_tar_cannot_stream_and_expand_shifts_needs_memory(tmp_path):
    with tarfile.open(tmp_path / "d.tar.gz", "w:gz") as tf:
        data = image_files()["train/a/00.png"]
        info = tarfile.TarInfo("train/a/00.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    with pytest.raises(DataError, match="compressed tar has no random access"):
        load_data(cfg_for(tmp_path / "d.tar.gz", "stream"))
    with pytest.raises(DataError, match="expand_shifts .* cannot be combined with data.loader=stream"):
        load_data(load_config(None, ["data.loader=stream", "data.expand_shifts=true"]).data)


def test_streaming_reports_a_corrupt_image_by_name(tmp_path):
    files = image_files()
    files["train/b/03.png"] = b"garbage"
    for name, data in files.items():
        (tmp_path / "d" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / name).write_bytes(data)
    cfg = cfg_for(tmp_path / "d", "stream", "data.workers=0", "data.val_size=0")
    splits = load_data(cfg)
    loader = build_train_loader(cfg, splits.train, 50, None, 3)
    with pytest.raises(DataError, match=r"train/b/03\.png: not a readable image"):
        list(loader.iterate())
