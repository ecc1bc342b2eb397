"""Hostile dataset files: silently wrong results and tracebacks of issue 13, each now exit 2
naming the file, or read correctly."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pytest

from cnnlab.data.config import DataConfig
from cnnlab.data.catalog import load_source
from tests.helpers import write_idx_subset
from tests.hostile.conftest import small_overrides


def train_args(path, runs_dir, **extra) -> list[str]:
    return ["train", "--quiet", *small_overrides(path, runs_dir, **extra)]


def _idx_folder(tmp_path, name="idx"):
    folder = tmp_path / name
    folder.mkdir()
    write_idx_subset(folder, n_train=120, n_test=40)
    return folder


def _rewrite(path, change):
    payload = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(change(payload))))


# -- labels ------------------------------------------------------------------------------------
def test_idx_label_out_of_range_is_refused_not_a_201_class_network(tmp_path, runs_dir, cli):
    folder = _idx_folder(tmp_path)

    def one_label_200(payload):
        payload[8 + 3] = 200
        return payload
    _rewrite(folder / "train-labels-idx1-ubyte.gz", one_label_200)
    cli(train_args(folder, runs_dir), 2, folder, "no training example")


def test_test_class_absent_from_train_is_refused(tmp_path, runs_dir, cli):
    folder = _idx_folder(tmp_path)

    def no_nines(payload):
        labels = np.frombuffer(bytes(payload[8:]), np.uint8).copy()
        labels[labels == 9] = 8
        return payload[:8] + labels.tobytes()
    _rewrite(folder / "train-labels-idx1-ubyte.gz", no_nines)
    err = cli(train_args(folder, runs_dir), 2, folder, "never occur in train")
    assert "(9)" in err


def test_npz_float_labels_are_refused(tmp_path, runs_dir, cli):
    x = np.zeros((20, 1, 8, 8), np.float32)
    path = tmp_path / "float-labels.npz"
    np.savez(path, x_train=x, y_train=np.arange(20) % 2 + 0.5, x_test=x, y_test=np.arange(20) % 2)
    cli(train_args(path, runs_dir, **{"data.source": "npz"}), 2, path, "integer")


# -- pixels ------------------------------------------------------------------------------------
def test_npz_nan_pixel_is_refused(tmp_path, runs_dir, cli):
    x = np.random.default_rng(0).random((60, 1, 8, 8), dtype=np.float32)
    x[7, 0, 2, 2] = np.nan
    path = tmp_path / "nan.npz"
    np.savez(path, x_train=x, y_train=np.arange(60) % 2, x_test=x[:20], y_test=np.arange(20) % 2)
    cli(train_args(path, runs_dir, **{"data.source": "npz", "data.val_size": 10}), 2, path, "image 7", "non-finite")


def test_float64_pixels_that_overflow_float32_are_refused(tmp_path, runs_dir, cli):
    x = np.full((60, 1, 8, 8), 1e300)
    path = tmp_path / "huge-values.npz"
    np.savez(path, x_train=x, y_train=np.arange(60) % 2, x_test=x[:20], y_test=np.arange(20) % 2)
    cli(train_args(path, runs_dir, **{"data.source": "npz", "data.val_size": 10}), 2, path, "non-finite")


def test_data_that_overflows_in_training_blames_the_input_not_the_rate(tmp_path, runs_dir, capsys):
    from cnnlab.cli import main

    x = np.full((60, 1, 8, 8), 1e30, np.float32)
    x[::2] *= 2
    path = tmp_path / "large.npz"
    np.savez(path, x_train=x, y_train=np.arange(60) % 2, x_test=x[:20], y_test=np.arange(20) % 2)
    code = main(train_args(path, runs_dir, **{"data.source": "npz", "data.val_size": 10,
                                              "data.normalize": "none", "model": "fc",
                                              "train.batch_size": 10, "train.epochs": 2}))
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert "RMS" in err and "not the learning rate" in err and "Lower optim.lr" not in err


@pytest.mark.parametrize("split", ["train", "test"])
def test_npz_empty_split_is_refused(tmp_path, runs_dir, cli, split):
    x, y = np.zeros((20, 1, 8, 8), np.uint8), np.arange(20) % 2
    arrays = {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    arrays[f"x_{split}"], arrays[f"y_{split}"] = x[:0], y[:0]
    path = tmp_path / "empty.npz"
    np.savez(path, **arrays)
    cli(train_args(path, runs_dir, **{"data.source": "npz", "data.val_size": 0}), 2, path, f"{split} split is empty")


# -- IDX ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, dtype", [(0x0D, ">f4"), (0x0B, ">i2")])
def test_idx_big_endian_images_are_read(tmp_path, code, dtype):
    folder = _idx_folder(tmp_path)
    originals = {}
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        path = folder / f"{stem}.gz"
        raw = gzip.decompress(path.read_bytes())
        images = np.frombuffer(raw[16:], np.uint8).reshape(-1, 28, 28)
        originals[stem] = images
        header = bytes([0, 0, code, 3]) + struct.pack(">3I", *images.shape)
        path.write_bytes(gzip.compress(header + images.astype(dtype).tobytes()))
    splits = load_source(DataConfig(source="idx", path=str(folder)))
    assert splits.train.images.dtype.is_floating_point
    assert np.array_equal(splits.train.images[:, 0].numpy(), originals["train-images-idx3-ubyte"].astype(np.float32))


def test_idx_dimensions_whose_product_overflows_are_refused(tmp_path, runs_dir, cli):
    folder = _idx_folder(tmp_path)
    path = folder / "train-images-idx3-ubyte.gz"
    header = b"\x00\x00\x08\x04" + struct.pack(">4I", *[2**32 - 1] * 4)
    path.write_bytes(gzip.compress(header + b"\x00" * 64))
    cli(train_args(folder, runs_dir), 2, path)


def test_idx_declaring_more_than_memory_is_refused_before_reading(tmp_path, runs_dir, cli):
    folder = _idx_folder(tmp_path)
    path = folder / "train-images-idx3-ubyte"  # plain: found before the .gz
    path.write_bytes(b"\x00\x00\x08\x03" + struct.pack(">3I", 2**31, 2**16, 2**16) + b"\x00" * 64)
    cli(train_args(folder, runs_dir), 2, path, "memory")


# -- images ------------------------------------------------------------------------------------
def _png(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def _sixteen_bit_folder(root):
    for c, cls in enumerate(("a", "b")):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            values = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + 300 * i + 20000 * c)
            (root / cls / f"{i}.png").write_bytes(_png(values.astype(np.uint16)))
    return root


@pytest.mark.parametrize("loader", ["device", "stream"])
def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path, loader):
    from PIL import Image

    folder = _sixteen_bit_folder(tmp_path / "png16")
    assert Image.open(folder / "a" / "0.png").mode.startswith("I;16")
    cfg = DataConfig(source="folder", path=str(folder), loader=loader, cache=False, test_split=0.2, workers=0)
    splits = load_source(cfg)
    images = splits.train.images[:len(splits.train)] if loader == "stream" else splits.train.images
    assert len(np.unique(images.numpy())) > 20  # clipped to 8 bits it would be 0 and 255 only


def test_sixteen_bit_png_to_predict_is_scaled(tmp_path, run_copy, capsys):
    from cnnlab.train.inference import load_image

    values = (np.arange(28 * 28, dtype=np.uint32).reshape(28, 28) * 80).astype(np.uint16)
    path = tmp_path / "digit16.png"
    path.write_bytes(_png(values))
    image = load_image(path, (1, 28, 28))
    assert np.array_equal(image[0, 0].numpy(), ((values.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8))


def _bomb() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buffer, "PNG")  # ~110 KB, 9e8 pixels
    return buffer.getvalue()


def test_decompression_bomb_in_a_folder_is_refused(tmp_path, runs_dir, cli):
    folder = tmp_path / "bomb"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(3):
            (folder / cls / f"{i}.png").write_bytes(_png(np.zeros((8, 8), np.uint8)))
    (folder / "a" / "9.png").write_bytes(_bomb())
    cli(train_args(folder, runs_dir, **{"data.source": "folder", "data.val_size": 0, "data.cache": "false"}),
        2, folder / "a" / "9.png", "decompression bomb")


def test_decompression_bomb_given_to_predict_is_refused(tmp_path, run_copy, cli):
    path = tmp_path / "bomb.png"
    path.write_bytes(_bomb())
    cli(["predict", run_copy, path, "--device", "cpu"], 2, path, "decompression bomb")


def test_truncated_decode_cache_entry_is_rebuilt(tmp_path):
    from cnnlab.data.cache import cache_path
    from cnnlab.data.sources import cache_dir

    folder = _sixteen_bit_folder(tmp_path / "png")
    cfg = DataConfig(source="folder", path=str(folder), test_split=0.2)
    first = load_source(cfg)
    entry = cache_path(cache_dir(), folder, {"channels": None})
    assert entry.is_file()
    entry.write_bytes(entry.read_bytes()[:200])  # truncated
    again = load_source(cfg)
    assert np.array_equal(again.train.images.numpy(), first.train.images.numpy())
    assert np.load(entry)["images"].shape == (10, 1, 8, 8)  # rebuilt


def test_zip_member_inflating_to_400_mb_is_refused_before_inflating(tmp_path, runs_dir, cli):
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("a/0.png", _png(np.zeros((8, 8), np.uint8)))
        zf.writestr("b/0.png", _png(np.zeros((8, 8), np.uint8)))
        zf.writestr("a/big.png", b"\x00" * (400 << 20))
    assert path.stat().st_size < 1 << 20
    cli(train_args(path, runs_dir, **{"data.source": "folder", "data.val_size": 0, "data.cache": "false"}),
        2, "a/big.png", "refused")


# -- HDF5 ----------------------------------------------------------------------------------------
def _h5(path, **overrides):
    import h5py

    x, y = np.zeros((20, 1, 8, 8), np.uint8), np.arange(20) % 2
    with h5py.File(path, "w") as f:
        for key, value in {"x_train": x, "y_train": y, "x_test": x, "y_test": y}.items():
            if key in overrides:
                overrides[key](f, key)
            else:
                f[key] = value
    return path


def test_hdf5_broken_external_link_is_refused(tmp_path, runs_dir, cli):
    import h5py

    path = _h5(tmp_path / "link.h5", x_train=lambda f, k: f.__setitem__(k, h5py.ExternalLink("/nowhere.h5", "/x")))
    cli(train_args(path, runs_dir, **{"data.source": "hdf5", "data.val_size": 0}), 2, path, "x_train", "hdf5_links")
    # opted in, the broken link is a clear error too
    cli(train_args(path, runs_dir, **{"data.source": "hdf5", "data.val_size": 0, "data.hdf5_links": "true"}),
        2, path, "x_train")


def test_hdf5_external_link_is_followed_when_opted_in(tmp_path):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.ones((20, 1, 8, 8), np.uint8)
    path = _h5(tmp_path / "link.h5", x_train=lambda f, k: f.__setitem__(k, h5py.ExternalLink(str(other), "/x")))
    splits = load_source(DataConfig(source="hdf5", path=str(path), hdf5_links=True))
    assert int(splits.train.images.sum()) == 20 * 64


def test_small_hdf5_declaring_two_billion_images_is_refused(tmp_path, runs_dir, cli):
    path = _h5(tmp_path / "huge.h5", x_train=lambda f, k: f.create_dataset(
        k, shape=(2_000_000_000, 1, 28, 28), dtype="u1", chunks=(1, 1, 28, 28)))
    assert path.stat().st_size < 1 << 20
    cli(train_args(path, runs_dir, **{"data.source": "hdf5", "data.val_size": 0}), 2, path, "memory")


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_archive_inflating_to_more_than_memory_is_refused(tmp_path, runs_dir, cli, monkeypatch, suffix):
    """Members each under the per-member limit, together over the memory available (here set
    to 2 MiB): refused before they are read (a zip: before any is inflated)."""
    import tarfile

    from cnnlab.data import archive, limits

    monkeypatch.setattr(limits, "available_memory", lambda: 2 << 20)
    monkeypatch.setattr(archive, "available_memory", lambda: 2 << 20)
    members = {f"{c}/{i}.png": _png(np.zeros((8, 8), np.uint8)) for c in "ab" for i in range(2)}
    members |= {f"a/big{i}.png": b"\x00" * (900 << 10) for i in range(3)}
    path = tmp_path / f"many{suffix}"
    if suffix == ".zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
    else:
        with tarfile.open(path, "w:gz") as tf:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    assert path.stat().st_size < 100 << 10
    cli(train_args(path, runs_dir, **{"data.source": "folder", "data.val_size": 0, "data.cache": "false"}),
        2, path, "memory")
