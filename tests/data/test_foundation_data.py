"""IDX datasets, bundled MNIST, validation split, and downloads from a loopback HTTP server."""

from __future__ import annotations

import gzip
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnlab.data import DataConfig, load_data
from cnnlab.data.idx import parse_idx, read_idx
from cnnlab.data.catalog import load_source
from cnnlab.data.sources import IDX_FILES, MNIST_SHA256
from cnnlab.errors import DataError
from tests.helpers import idx_bytes

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_bundled_mnist_matches_published_counts_and_checksums():
    splits = load_source(DataConfig())
    assert tuple(splits.train.images.shape) == (60_000, 1, 28, 28)
    assert tuple(splits.test.images.shape) == (10_000, 1, 28, 28)
    assert splits.train.images.dtype == torch.uint8
    assert torch.bincount(splits.train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert splits.classes == [str(i) for i in range(10)]


def test_validation_split_is_carved_from_train_and_seeded():
    a = load_data(DataConfig(), seed=1)
    b = load_data(DataConfig(), seed=1)
    assert len(a.train) == 50_000 and len(a.val) == 10_000 and len(a.test) == 10_000
    assert torch.equal(a.val.labels, b.val.labels)
    # the two parts partition the original train set: pixel sums add up
    whole = load_source(DataConfig())
    total = a.train.images.double().sum() + a.val.images.double().sum()
    assert total == whole.train.images.double().sum()


def test_val_size_too_large_is_an_error():
    with pytest.raises(DataError, match="val_size"):
        load_data(DataConfig(val_size=60_000))


def test_parse_idx_roundtrip_and_errors():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(idx_bytes(array)), array)
    with pytest.raises(DataError, match="truncated or corrupt"):
        parse_idx(idx_bytes(array)[:-5], "x")
    with pytest.raises(DataError, match="bad magic"):
        parse_idx(b"\x01\x02\x08\x01" + b"\x00" * 8, "x")


def _copy_idx_folder(dst: Path, n_train=100, n_test=50) -> Path:
    from tests.helpers import write_idx_subset
    write_idx_subset(dst, n_train, n_test)
    return dst


def test_generic_idx_folder_source(tmp_path):
    folder = _copy_idx_folder(tmp_path)
    splits = load_data(DataConfig(source="idx", path=str(folder), val_size=20))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 20, 50)


def test_idx_folder_missing_file_names_it(tmp_path):
    folder = _copy_idx_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_data(DataConfig(source="idx", path=str(folder), val_size=0))


def test_truncated_gzip_names_the_file(tmp_path):
    folder = _copy_idx_folder(tmp_path)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*truncated or corrupt"):
        load_data(DataConfig(source="idx", path=str(folder), val_size=0))


def test_label_count_mismatch(tmp_path):
    folder = _copy_idx_folder(tmp_path)
    labels = read_idx(folder / "train-labels-idx1-ubyte.gz")[:-1]
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(DataError, match="99 labels"):
        load_data(DataConfig(source="idx", path=str(folder), val_size=0))


def test_corrupt_mnist_file_fails_its_checksum(tmp_path, shared_datasets):
    folder = tmp_path / "mnist"
    shutil.copytree(shared_datasets / "mnist", folder)
    stem = "t10k-labels-idx1-ubyte"
    payload = bytearray(gzip.decompress((folder / f"{stem}.gz").read_bytes()))
    payload[-1] = (payload[-1] + 1) % 10  # one label changed: still a valid IDX file
    (folder / f"{stem}.gz").chmod(0o644)
    (folder / f"{stem}.gz").write_bytes(gzip.compress(bytes(payload)))
    with pytest.raises(DataError, match=f"{stem}.gz: checksum mismatch"):
        load_source(DataConfig(path=str(folder), download=False))


# -- downloads against a loopback HTTP server ----------------------------------------------

class _Handler(http.server.SimpleHTTPRequestHandler):
    mode = "good"  # good | truncated | corrupt
    served: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        data = (self.server.root / name).read_bytes()
        type(self).served.append(name)
        declared = len(data)
        if self.mode == "corrupt":
            data = gzip.compress(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x02" + b"\x07\x07")
            declared = len(data)
        if self.mode == "truncated":
            data = data[: len(data) // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def mirror(shared_datasets, monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.root = shared_datasets / "mnist"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Handler.served = []
    url = f"http://127.0.0.1:{server.server_address[1]}/mnist"
    monkeypatch.setenv("CNNLAB_MNIST_MIRRORS", url)
    yield _Handler
    server.shutdown()
    _Handler.mode = "good"


def test_download_fetches_missing_files_and_verifies(tmp_path, mirror):
    target = tmp_path / "mnist"
    splits = load_source(DataConfig(path=str(target)))
    assert len(splits.train) == 60_000
    assert sorted(mirror.served) == sorted(f + ".gz" for f in IDX_FILES.values())
    assert sorted(p.name for p in target.iterdir()) == sorted(f + ".gz" for f in MNIST_SHA256)
    # a second load uses the files on disk
    mirror.served.clear()
    load_source(DataConfig(path=str(target)))
    assert mirror.served == []


@pytest.mark.parametrize("mode, message", [("truncated", "truncated response"),
                                           ("corrupt", "checksum mismatch")])
def test_bad_download_leaves_nothing_behind(tmp_path, mirror, mode, message):
    mirror.mode = mode
    target = tmp_path / "mnist"
    with pytest.raises(DataError, match=message):
        load_source(DataConfig(path=str(target)))
    assert not target.exists() or list(target.iterdir()) == []  # no partial files


def test_offline_message_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_MNIST_MIRRORS", "http://127.0.0.1:9/mnist")  # discard port: refused
    with pytest.raises(DataError, match="could not download .*network looks unreachable"):
        load_source(DataConfig(path=str(tmp_path / "m")))


def test_download_disabled_reports_missing_file(tmp_path):
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte"):
        load_source(DataConfig(path=str(tmp_path), download=False))
