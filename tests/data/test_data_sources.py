"""Sources: image folders (dir / tar.gz / zip), CIFAR-10 python and .bin batches (restricted
unpickler, download), .npz and HDF5 arrays -- and every documented bad input."""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.config import load_config
from cnnlab.data import load_data
from cnnlab.errors import DataError


def data_cfg(*overrides):
    return load_config(None, ["data.val_size=0", *overrides]).data


def png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt)
    return buf.getvalue()


def tree(classes=("cat", "dog"), per_class=3, split=True, size=(8, 6), mode="RGB"):
    """{relative path: bytes} of an image tree with deterministic pixels."""
    rng = np.random.default_rng(0)
    files = {}
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    for s in (("train", "test") if split else ("",)):
        for c in classes:
            for i in range(per_class):
                name = "/".join(p for p in (s, c, f"{i:03d}.png") if p)
                files[name] = png(rng.integers(0, 256, shape, dtype=np.uint8))
    return files


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def write_tar(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_folder_directory_with_train_test_layout(tmp_path):
    files = tree()
    root = write_dir(tmp_path / "imgs", files)
    splits = load_data(data_cfg("data.source=folder", f"data.path={root}"))
    assert splits.classes == ["cat", "dog"]
    assert len(splits.train) == 6 and len(splits.test) == 6
    assert splits.input_shape == (3, 6, 8) and splits.train.images.dtype == torch.uint8
    first = np.array(Image.open(io.BytesIO(files["train/cat/000.png"])))
    assert torch.equal(splits.train.images[0], torch.from_numpy(first).permute(2, 0, 1))
    assert splits.train.labels.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_folder_archives_equal_the_directory(tmp_path, kind):
    files = tree()
    direct = load_data(data_cfg("data.source=folder", f"data.path={write_dir(tmp_path / 'd', files)}"))
    if kind == "zip":
        path = tmp_path / "imgs.zip"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr("wrapped/" + name, data)
    else:
        path = write_tar(tmp_path / "imgs.tar.gz", files, prefix="wrapped/")
    archived = load_data(data_cfg("data.source=folder", f"data.path={path}", "data.cache=false"))
    assert torch.equal(archived.train.images, direct.train.images)
    assert torch.equal(archived.test.labels, direct.test.labels)


def test_folder_without_split_holds_out_a_stratified_fraction(tmp_path):
    root = write_dir(tmp_path / "imgs", tree(classes=("a", "b", "c"), per_class=10, split=False))
    splits = load_data(data_cfg("data.source=folder", f"data.path={root}", "data.test_split=0.3"))
    assert len(splits.test) == 9 and len(splits.train) == 21
    assert torch.bincount(splits.test.labels).tolist() == [3, 3, 3]
    again = load_data(data_cfg("data.source=folder", f"data.path={root}", "data.test_split=0.3", "seed=5"))
    assert torch.equal(again.test.images, splits.test.images)  # independent of the run seed


def test_folder_cache_is_used_on_the_second_load(tmp_path, monkeypatch):
    import cnnlab.data.folder as folder

    root = write_dir(tmp_path / "imgs", tree())
    cfg = data_cfg("data.source=folder", f"data.path={root}")
    first = load_data(cfg)
    assert list((Path(os.environ["CNNLAB_DATA"]) / "decoded").glob("imgs-*.npz"))
    monkeypatch.setattr(folder, "decode_image", lambda *a: pytest.fail("decoded again"))
    second = load_data(cfg)
    assert torch.equal(first.train.images, second.train.images)
    (root / "train" / "cat" / "000.png").write_bytes(tree(per_class=1)["train/dog/000.png"])
    monkeypatch.undo()
    changed = load_data(cfg)  # the folder changed: its listing key changed, so it is decoded again
    assert not torch.equal(changed.train.images[0], first.train.images[0])


def test_folder_channels_convert_grayscale(tmp_path):
    files = tree(mode="L")
    root = write_dir(tmp_path / "imgs", files)
    assert load_data(data_cfg("data.source=folder", f"data.path={root}")).input_shape == (1, 6, 8)
    rgb = load_data(data_cfg("data.source=folder", f"data.path={root}", "data.channels=3"))
    assert rgb.input_shape == (3, 6, 8)
    assert torch.equal(rgb.train.images[:, 0], rgb.train.images[:, 2])


# -- bad input ---------------------------------------------------------------------------------
def load_folder(path):
    return load_data(data_cfg("data.source=folder", f"data.path={path}", "data.cache=false"))


def test_corrupt_and_truncated_images_name_the_file(tmp_path):
    files = tree()
    files["train/dog/001.png"] = b"this is not a png"
    with pytest.raises(DataError, match=r"train/dog/001\.png: not a readable image"):
        load_folder(write_dir(tmp_path / "a", files))
    files = tree()
    jpeg = png(np.full((6, 8, 3), 100, np.uint8), "JPEG")
    files["test/cat/002.jpg"] = jpeg[: len(jpeg) // 2]
    with pytest.raises(DataError, match=r"test/cat/002\.jpg: .*corrupt or truncated"):
        load_folder(write_tar(tmp_path / "b.tar.gz", files))


def test_empty_class_folder_is_an_error(tmp_path):
    root = write_dir(tmp_path / "imgs", tree())
    (root / "train" / "bird").mkdir()
    with pytest.raises(DataError, match="class folder 'train/bird' has no images"):
        load_folder(root)


def test_mismatched_size_and_channels_name_the_file(tmp_path):
    files = tree()
    files["train/dog/002.png"] = png(np.zeros((7, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"train/dog/002\.png: image is 8x7 .* mismatched size"):
        load_folder(write_dir(tmp_path / "a", files))
    files = tree()
    files["test/dog/000.png"] = png(np.zeros((6, 8), np.uint8))
    with pytest.raises(DataError, match=r"test/dog/000\.png: .* mismatched channels; set data.channels"):
        load_folder(write_dir(tmp_path / "b", files))


def test_test_classes_missing_from_train_and_stray_files(tmp_path):
    files = tree()
    files["test/bird/000.png"] = files["test/cat/000.png"]
    with pytest.raises(DataError, match="test/ has classes that train/ lacks: bird"):
        load_folder(write_dir(tmp_path / "a", files))
    files = tree()
    files["train/cat/deeper/000.png"] = files["test/cat/000.png"]
    with pytest.raises(DataError, match="does not fit the folder layout"):
        load_folder(write_dir(tmp_path / "b", files))


@pytest.mark.parametrize("name", ["../evil.png", "/abs/evil.png", "train/../../evil.png"])
def test_tar_members_escaping_the_target_are_refused(tmp_path, name):
    files = tree()
    files[name] = files["train/cat/000.png"]
    with pytest.raises(DataError, match="could escape the target directory"):
        load_folder(write_tar(tmp_path / "evil.tar.gz", files))


def test_links_in_archives_and_folders_are_refused(tmp_path):
    path = tmp_path / "link.tar"
    with tarfile.open(path, "w") as tf:
        info = tarfile.TarInfo("train/cat/000.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="is a link"):
        load_folder(path)
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("../x.png", b"")
    with pytest.raises(DataError, match="contains '..'"):
        load_folder(zpath)
    root = write_dir(tmp_path / "imgs", tree())
    (root / "train" / "cat" / "link.png").symlink_to("/etc/passwd")
    with pytest.raises(DataError, match="symbolic link"):
        load_folder(root)


def test_truncated_archive_and_missing_path(tmp_path):
    path = write_tar(tmp_path / "t.tar.gz", tree())
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_folder(path)
    with pytest.raises(DataError, match="no such file or folder"):
        load_folder(tmp_path / "nothing")


# -- CIFAR-10 -----------------------------------------------------------------------------------
def cifar_arrays(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()


def cifar_python_files(n=20) -> dict[str, bytes]:
    files = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = cifar_arrays(n, i)
        files[f"cifar-10-batches-py/{name}"] = pickle.dumps(
            {b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": [b"x"] * n},
            protocol=2)
    files["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    return files


def cifar_bin_files(n=20) -> dict[str, bytes]:
    files = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data, labels = cifar_arrays(n, i)
        records = np.concatenate([np.array(labels, np.uint8)[:, None], data], axis=1)
        files[f"cifar-10-batches-bin/{name}.bin"] = records.tobytes()
    return files


@pytest.mark.parametrize("make", [cifar_python_files, cifar_bin_files])
def test_cifar10_python_and_bin_batches_from_tarball_and_folder(tmp_path, make):
    files = make()
    path = write_tar(tmp_path / "cifar.tar.gz", files)
    splits = load_data(data_cfg("data.source=cifar10", f"data.path={path}"))
    assert len(splits.train) == 100 and len(splits.test) == 20 and splits.input_shape == (3, 32, 32)
    assert splits.classes[0] == "airplane" and len(splits.classes) == 10
    data, labels = cifar_arrays(20, 1)  # data_batch_2 = train[20:40]
    assert torch.equal(splits.train.images[20:40], torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert splits.train.labels[20:40].tolist() == labels
    folder = write_dir(tmp_path / "extracted", files)
    same = load_data(data_cfg("data.source=cifar10", f"data.path={folder}"))
    assert torch.equal(same.test.images, splits.test.images)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = cifar_python_files()
    files["cifar-10-batches-py/data_batch_3"] = pickle.dumps({b"data": _Evil(), b"labels": []}, protocol=2)
    with pytest.raises(DataError, match=r"data_batch_3: the pickle refers to '(posix|os|nt)\.system'"):
        load_data(data_cfg("data.source=cifar10", f"data.path={write_tar(tmp_path / 'c.tar.gz', files)}"))
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("payload,message", [
    ({b"data": np.array(["rm -rf", 1], dtype=object), b"labels": [0]}, "dtype object"),
    ({b"data": np.zeros((3, 100), np.uint8), b"labels": [0, 1, 2]}, "uint8 N x 3072"),
    ([1, 2, 3], "not a CIFAR-10 batch"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 11]}, "labels span 0..11"),
])
def test_unexpected_pickle_contents_are_refused(tmp_path, payload, message):
    files = cifar_python_files()
    files["cifar-10-batches-py/test_batch"] = pickle.dumps(payload, protocol=2)
    with pytest.raises(DataError, match=message):
        load_data(data_cfg("data.source=cifar10", f"data.path={write_tar(tmp_path / 'c.tar.gz', files)}"))


def test_truncated_bin_batch(tmp_path):
    files = cifar_bin_files()
    files["cifar-10-batches-bin/data_batch_2.bin"] = files["cifar-10-batches-bin/data_batch_2.bin"][:-5]
    with pytest.raises(DataError, match=r"data_batch_2\.bin: .* not a whole number"):
        load_data(data_cfg("data.source=cifar10", f"data.path={write_dir(tmp_path / 'x', files)}"))


def test_cifar10_download_is_checksummed_and_atomic(tmp_path, monkeypatch):
    import cnnlab.data.cifar as cifar

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    archive = write_tar(mirror / "cifar-10-python.tar.gz", cifar_python_files())
    monkeypatch.setenv("CNNLAB_CIFAR10_MIRRORS", "file://" + str(mirror))
    monkeypatch.setitem(cifar.ARCHIVES, "cifar-10-python.tar.gz", "0" * 32)
    target = tmp_path / "cache"
    with pytest.raises(DataError, match="md5 .* does not match the published"):
        load_data(data_cfg("data.source=cifar10", f"data.path={target}"))
    assert not list(target.glob("*")) if target.exists() else True
    monkeypatch.setitem(cifar.ARCHIVES, "cifar-10-python.tar.gz", hashlib.md5(archive.read_bytes()).hexdigest())
    splits = load_data(data_cfg("data.source=cifar10", f"data.path={target}"))
    assert len(splits.train) == 100 and (target / "cifar-10-python.tar.gz").is_file()
    with pytest.raises(DataError, match="data.download is false"):
        load_data(data_cfg("data.source=cifar10", f"data.path={tmp_path / 'empty'}", "data.download=false"))


# -- arrays ------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_npz_and_hdf5_any_channels_float_or_uint8(tmp_path, layout, dtype):
    import h5py

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (30, 5, 7, 2)).astype(dtype)  # 2 channels, NHWC
    stored = x if layout == "nhwc" else x.transpose(0, 3, 1, 2)
    arrays = {"x_train": stored[:20], "y_train": np.arange(20) % 3, "x_test": stored[20:],
              "y_test": np.arange(10) % 3, "classes": np.array(["a", "b", "c"])}
    np.savez(tmp_path / "d.npz", **arrays)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        for k, v in arrays.items():
            f[k] = v.astype("S") if k == "classes" else v
    for source, name in (("npz", "d.npz"), ("hdf5", "d.h5")):
        splits = load_data(data_cfg(f"data.source={source}", f"data.path={tmp_path / name}"))
        assert splits.input_shape == (2, 5, 7) and splits.classes == ["a", "b", "c"]
        assert splits.train.images.dtype == (torch.uint8 if dtype == np.uint8 else torch.float32)
        assert torch.equal(splits.test.images.float(), torch.from_numpy(x[20:].astype(np.float32)).permute(0, 3, 1, 2))


def test_arrays_bad_input(tmp_path):
    np.savez(tmp_path / "labels.npz", x_train=np.zeros((4, 3, 3), np.uint8), y_train=np.array([0, 1, 2, 5]),
             x_test=np.zeros((2, 3, 3), np.uint8), y_test=np.array([0, 1]), classes=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match=r"train labels span 0\.\.5 but there are 3 classes"):
        load_data(data_cfg("data.source=npz", f"data.path={tmp_path / 'labels.npz'}"))
    np.savez(tmp_path / "keys.npz", images=np.zeros((4, 3, 3)))
    with pytest.raises(DataError, match="no 'x_train' .* the file holds images"):
        load_data(data_cfg("data.source=npz", f"data.path={tmp_path / 'keys.npz'}"))
    np.savez(tmp_path / "shape.npz", x_train=np.zeros((4, 3, 3), np.uint8), y_train=np.zeros(4, int),
             x_test=np.zeros((2, 4, 4), np.uint8), y_test=np.zeros(2, int))
    with pytest.raises(DataError, match="train images are .* but test images"):
        load_data(data_cfg("data.source=npz", f"data.path={tmp_path / 'shape.npz'}"))
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_data(data_cfg("data.source=npz", f"data.path={tmp_path / 'junk.npz'}"))
