"""Jet generation with Pythia 8 + FastJet: a few hundred jets, checked against the stored
constituents, plus reproducibility, parallel = serial, resume and append without duplicates."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from cnnlab.cli import main  # noqa: E402
from cnnlab.errors import DataError  # noqa: E402
from cnnlab.physics.generate import block_seed  # noqa: E402
from cnnlab.physics.produce import generate_file  # noqa: E402
from cnnlab.physics.settings import JetSettings  # noqa: E402
from cnnlab.physics.store import read_constituents, read_jets, read_summary  # noqa: E402

SMALL = JetSettings(block_events=10)


@pytest.fixture(scope="session")
def jets_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("jets") / "jets.h5"
    summary = generate_file(path, 150, SMALL, seed=3, workers=1, progress=False)
    assert summary["jets"] >= 150
    return path


def test_file_layout_shapes_and_attributes(jets_file):
    data = read_jets(jets_file)
    n = len(data["jets"]["pt"])
    assert data["images"].shape == (n, 3, 32, 32) and data["images"].dtype == np.float32
    assert data["classes"] == ["gluon", "quark"]
    assert data["channels"] == ["sum_E", "sum_charge", "sum_abs_charge"]
    info = read_summary(jets_file)
    assert info["settings"] == json.loads(SMALL.model_dump_json())
    assert info["seed"] == 3 and info["n_jets"] == n
    assert info["versions"]["pythia8mc"] == "8.317.2"
    assert info["quark"] + info["gluon"] == n
    assert info["jets_in_window"] - info["unmatched"] == n
    assert info["events"] == 10 * info["n_blocks"]
    with h5py.File(jets_file, "r") as h5:
        seeds = h5["blocks/seed"][:]
        assert seeds.tolist() == [block_seed(3, b) for b in range(info["n_blocks"])]
        assert h5["blocks/jets"][:].sum() == n


def test_jets_are_in_the_window_and_labelled_by_partons(jets_file):
    jets = read_jets(jets_file, images=False)["jets"]
    assert ((jets["pt"] >= 300) & (jets["pt"] < 470)).all()
    assert (np.abs(jets["eta"]) < 2).all()
    assert set(np.unique(jets["label"])) == {0, 1}  # both classes
    quark = np.abs(jets["parton_id"]) <= 5
    np.testing.assert_array_equal(jets["label"] == 1, quark)
    np.testing.assert_array_equal(jets["parton_id"][~quark], 21)


def test_channel_sums_equal_constituent_sums_inside_the_window(jets_file):
    data = read_jets(jets_file)
    jets, images = data["jets"], data["images"].astype(np.float64)
    c, owner = read_constituents(jets_file)
    d_eta = c["eta"].astype(np.float64) - jets["eta"][owner]
    d_phi = (c["phi"].astype(np.float64) - jets["phi"][owner] + np.pi) % (2 * np.pi) - np.pi
    inside = (np.abs(d_eta) < 0.5 - 1e-4) & (np.abs(d_phi) < 0.5 - 1e-4)
    for j in range(len(images)):
        m = (owner == j) & inside
        q = c["charge"][m].astype(np.float64)
        np.testing.assert_allclose(images[j].sum(axis=(1, 2)),
                                   [c["e"][m].sum(), q.sum(), np.abs(q).sum()], rtol=1e-4, atol=1e-2)


def test_features_match_the_constituents(jets_file):
    jets = read_jets(jets_file, images=False)["jets"]
    c, owner = read_constituents(jets_file)
    np.testing.assert_array_equal(np.bincount(owner), jets["multiplicity"])
    np.testing.assert_array_equal(np.bincount(owner, c["charge"] != 0), jets["n_charged"])
    pt, eta, phi, e = (c[k].astype(np.float64) for k in ("pt", "eta", "phi", "e"))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    sums = [np.bincount(owner, w) for w in (px, py, pz, e)]
    np.testing.assert_allclose(np.hypot(sums[0], sums[1]), jets["pt"], rtol=1e-4)  # E-scheme jets
    mass = np.sqrt(np.maximum(sums[3] ** 2 - sums[0] ** 2 - sums[1] ** 2 - sums[2] ** 2, 0))
    np.testing.assert_allclose(mass, jets["mass"], rtol=2e-2, atol=0.5)
    d_eta = eta - jets["eta"][owner]
    d_phi = (phi - jets["phi"][owner] + np.pi) % (2 * np.pi) - np.pi
    girth = np.bincount(owner, pt * np.hypot(d_eta, d_phi)) / jets["pt"]
    np.testing.assert_allclose(girth, jets["girth"], rtol=1e-3)


def test_same_seed_same_jets_other_seed_other_jets(jets_file, tmp_path):
    again = tmp_path / "again.h5"
    generate_file(again, 20, SMALL, seed=3, workers=1, progress=False)
    first, second = read_jets(jets_file), read_jets(again)
    k = len(second["jets"]["pt"])
    np.testing.assert_array_equal(first["images"][:k], second["images"])
    for name, values in second["jets"].items():
        np.testing.assert_array_equal(first["jets"][name][:k], values)
    other = tmp_path / "other.h5"
    generate_file(other, 10, SMALL, seed=4, workers=1, progress=False)
    assert not np.array_equal(read_jets(other)["jets"]["pt"][:5], first["jets"]["pt"][:5])


def test_two_workers_write_the_same_file_as_one(jets_file, tmp_path):
    path = tmp_path / "parallel.h5"
    generate_file(path, 30, SMALL, seed=3, workers=2, progress=False)
    serial, parallel = read_jets(jets_file), read_jets(path)
    k = len(parallel["jets"]["pt"])
    np.testing.assert_array_equal(serial["images"][:k], parallel["images"])
    np.testing.assert_array_equal(serial["jets"]["event"][:k], parallel["jets"]["event"])


def test_resume_and_append_without_duplicates(jets_file, tmp_path):
    path = tmp_path / "resumed.h5"
    generate_file(path, 20, SMALL, seed=3, workers=1, progress=False)
    # An interrupted append: rows written, commit attributes not updated.
    with h5py.File(path, "a") as h5:
        for name in ("images", "jets/pt", "jets/block", "jets/event", "constituents/pt"):
            h5[name].resize(h5[name].shape[0] + 3, axis=0)
    summary = generate_file(path, 50, SMALL, seed=3, workers=1, progress=False)
    assert summary["resumed_from_jets"] >= 20
    resumed, reference = read_jets(path), read_jets(jets_file)
    n = len(resumed["jets"]["pt"])
    keys = list(zip(resumed["jets"]["block"], resumed["jets"]["event"], resumed["jets"]["pt"]))
    assert len(set(keys)) == n  # no jet twice
    np.testing.assert_array_equal(resumed["images"], reference["images"][:n])
    np.testing.assert_array_equal(np.unique(resumed["jets"]["block"]), np.arange(summary["blocks"]))
    with h5py.File(path, "r") as h5:
        assert h5["constituents/pt"].shape[0] == resumed["jets"]["multiplicity"].sum()
    # Asking for fewer jets than the file holds generates nothing.
    assert generate_file(path, 10, SMALL, seed=3, progress=False)["new_jets"] == 0


def test_resume_with_other_settings_or_seed_is_refused(jets_file, tmp_path):
    path = tmp_path / "copy.h5"
    generate_file(path, 5, SMALL, seed=3, progress=False)
    with pytest.raises(DataError, match="pixels: file has 32, asked 16"):
        generate_file(path, 50, SMALL.model_copy(update={"pixels": 16}), seed=3, progress=False)
    with pytest.raises(DataError, match="--seed 3"):
        generate_file(path, 50, SMALL, seed=9, progress=False)


def test_cli_generates_and_reports_json(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    code = main(["data", "jets", "--jets", "5", "--out", str(out), "--seed", "2", "--json", "--quiet",
                 "block_events=10", "channels=komiske"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["jets"] >= 5 and summary["counts"]["events"] == 10 * summary["blocks"]
    assert read_jets(out, images=False)["channels"] == ["charged_pT", "neutral_pT", "charged_multiplicity"]
    assert main(["data", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["channels"] == "komiske"


def test_cli_errors_exit_2(tmp_path, capsys):
    assert main(["data", "jets", "--jets", "5", "--out", str(tmp_path / "x.h5"), "pixel=16"]) == 2
    assert "Did you mean 'pixels'" in capsys.readouterr().err
    assert main(["data", "jets", "--jets", "5", "--out", str(tmp_path / "x.h5"), "pthat_min=abc"]) == 2
    assert "pthat_min" in capsys.readouterr().err
    assert main(["data", "jets", "--jets", "5"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["data", "jets", "--jets", "5", "--out", str(tmp_path / "y.h5"),
                 "--pythia", "HardQCD:nonsense = on"]) == 2
    assert "HardQCD:nonsense" in capsys.readouterr().err
    not_jets = tmp_path / "plain.h5"
    with h5py.File(not_jets, "w") as h5:
        h5["x"] = [1]
    assert main(["data", "jets", "--jets", "5", "--out", str(not_jets)]) == 2
    assert "not a cnnlab jets file" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path / "missing.h5")]) == 2
    assert "cnnlab data jets --jets N" in capsys.readouterr().err
