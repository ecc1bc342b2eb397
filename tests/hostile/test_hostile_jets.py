"""Hostile jets files (the HDF5 files of ``cnnlab data jets``, read by the jets sources and
``cnnlab data info``): damaged, reshaped, linked or huge -> exit 2 naming the file and the key."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from tests.hostile.conftest import small_overrides  # noqa: E402
from tests.physics.test_jets_dataset import SETTINGS, synthetic_block  # noqa: E402


@pytest.fixture(scope="module")
def jets_file(tmp_path_factory):
    from cnnlab.physics.store import JetFile

    path = tmp_path_factory.mktemp("jets") / "jets.h5"
    rng = np.random.default_rng(0)
    with JetFile.open(path, SETTINGS, seed=0, versions={}) as f:
        for b in range(6):
            f.append(synthetic_block(b, rng))
    return path


def _replace(f, key, **kwargs):
    del f[key]
    f.create_dataset(key, **kwargs)


DAMAGE = {  # name: (how, words the message must hold)
    "cut in half": (lambda p: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2]), ["HDF5"]),
    "empty": (lambda p: p.write_bytes(b""), ["HDF5"]),
    "garbage": (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\xff" * 4000), ["HDF5"]),
    "a dataset missing": (lambda f: f.__delitem__("jets/label"), ["jets/label"]),
    "images of another rank": (lambda f: _replace(f, "images", data=np.zeros((120, 33), np.float32)), ["images"]),
    "text for numbers": (lambda f: _replace(f, "jets/pt", data=np.array([b"x"] * 120)), ["jets/pt"]),
    "fewer rows than committed": (lambda f: _replace(f, "jets/eta", data=np.zeros(5, np.float32)), ["jets/eta"]),
    "settings not JSON": (lambda f: f.attrs.__setitem__("settings", "{pixels"), ["settings"]),
    "a negative count": (lambda f: f.attrs.__setitem__("n_jets", -3), ["n_jets"]),
    "labels beyond 0/1": (lambda f: f["jets/label"].__setitem__(slice(0, 1), 7), ["jets/label"]),
    "a broken external link": (lambda f: (f.__delitem__("jets/phi"), f.__setitem__("jets/phi", h5py.ExternalLink(
        "/nowhere.h5", "/phi"))), ["jets/phi", "hdf5_links"]),
    "a soft link": (lambda f: (f.__delitem__("jets/mass"), f.__setitem__("jets/mass", h5py.SoftLink("/jets/pt"))),
                    ["jets/mass", "hdf5_links"]),
    "2e9 jets declared": (lambda f: (f.attrs.__setitem__("n_jets", 2_000_000_000), [
        _replace(f, k, shape=(2_000_000_000, *f[k].shape[1:]), dtype=f[k].dtype, chunks=(1, *f[k].shape[1:]))
        for k in ["images"] + [f"jets/{n}" for n in f["jets"]]]), ["memory"]),
}


def _damaged(jets_file, tmp_path, damage):
    path = tmp_path / "jets.h5"
    shutil.copy(jets_file, path)
    how, words = DAMAGE[damage]
    if damage in ("cut in half", "empty", "garbage"):
        how(path)
    else:
        with h5py.File(path, "a") as f:
            how(f)
    return path, words


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_jets_file_on_train(jets_file, tmp_path, runs_dir, cli, damage):
    path, words = _damaged(jets_file, tmp_path, damage)
    assert path.stat().st_size < 1 << 20
    args = ["train", "--quiet", *small_overrides(path, runs_dir, **{"data.source": "jets", "data.val_size": 0,
                                                                    "model": "fc"})]
    cli(args, 2, path, *words)


@pytest.mark.parametrize("damage", ["cut in half", "a dataset missing", "settings not JSON", "a broken external link"])
def test_damaged_jets_file_on_info(jets_file, tmp_path, cli, damage):
    path, words = _damaged(jets_file, tmp_path, damage)
    cli(["data", "info", path], 2, path, *words)


def test_aligned_source_checks_the_constituents(jets_file, tmp_path, runs_dir, cli):
    path = tmp_path / "jets.h5"
    shutil.copy(jets_file, path)
    with h5py.File(path, "a") as f:
        _replace(f, "constituents/pt", data=np.zeros(3, np.float32))
    args = ["train", "--quiet", *small_overrides(path, runs_dir, **{"data.source": "jets-aligned",
                                                                    "data.val_size": 0, "model": "fc"})]
    cli(args, 2, path, "constituents/pt")


def test_external_link_followed_when_opted_in(jets_file, tmp_path):
    from cnnlab.data import DataConfig, load_data

    path = tmp_path / "jets.h5"
    shutil.copy(jets_file, path)
    other = tmp_path / "pt.h5"
    with h5py.File(path, "a") as f:
        with h5py.File(other, "w") as g:
            g["pt"] = f["jets/pt"][()]
        del f["jets/pt"]
        f["jets/pt"] = h5py.ExternalLink(str(other), "/pt")
    splits = load_data(DataConfig(source="jets", path=str(path), hdf5_links=True, val_size=0), seed=0)
    assert len(splits.test) > 0
