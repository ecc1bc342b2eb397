"""The jets dataset sources on a synthetic jets file (written with the real writer, no Pythia),
and a train -> evaluate run that prints the physics table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import DataConfig, load_data
from cnnlab.errors import DataError
from cnnlab.physics.generate import COUNTERS, assemble_block
from cnnlab.physics.settings import JetSettings
from cnnlab.physics.store import JetFile

SETTINGS = JetSettings(block_events=20)


def synthetic_block(index: int, rng) -> object:
    """20 jets (about 60% gluons, with more constituents) around random axes, phi near the cut."""
    jets = {k: [] for k in ("pt", "eta", "phi", "mass", "parton_id", "label", "block", "event")}
    parts, owner = [], []
    for j in range(20):
        label = int(rng.random() < 0.4)
        n = rng.poisson(15 if label else 30) + 2
        eta0, phi0 = rng.uniform(-1.5, 1.5), rng.choice([rng.uniform(-np.pi, np.pi), np.pi - 0.05])
        pt = rng.exponential(10, n)
        eta = eta0 + rng.normal(0, 0.1, n)
        phi = phi0 + rng.normal(0, 0.1, n)
        rows = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta),
                         rng.integers(-1, 2, n), np.full(n, 211)], 1)
        parts.append(rows)
        owner.append(np.full(n, j))
        for key, value in (("pt", pt.sum()), ("eta", eta0), ("phi", (phi0 + np.pi) % (2 * np.pi) - np.pi),
                           ("mass", 5.0 * n), ("parton_id", 1 if label else 21), ("label", label),
                           ("block", index), ("event", j)):
            jets[key].append(value)
    counts = dict.fromkeys(COUNTERS, 0) | {"events": 20}
    return assemble_block(index, 1000 + index, jets, parts, owner, counts, SETTINGS)


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "jets.h5"
    rng = np.random.default_rng(0)
    with JetFile.open(path, SETTINGS, seed=0, versions={"pythia8mc": "synthetic"}) as f:
        for b in range(30):
            f.append(synthetic_block(b, rng))
    return path


def load(path, **kw):
    return load_data(DataConfig(source=kw.pop("source", "jets"), path=str(path), **kw), seed=0)


def test_balanced_splits_by_block_with_test_extras(synthetic_file):
    splits = load(synthetic_file, val_size=20, test_split=0.2)
    assert splits.classes == ["gluon", "quark"]
    assert splits.input_shape == (3, 32, 32) and splits.train.images.dtype == torch.float32
    assert splits.test.labels.float().mean() == 0.5
    train_all = torch.cat([splits.train.labels, splits.val.labels])
    assert train_all.float().mean() == 0.5
    extras = splits.extras["test"]
    assert len(extras["pt"]) == len(splits.test)
    # Row for row: the test image's energy channel is the jet's constituent energy; labels match partons.
    np.testing.assert_array_equal(np.abs(extras["parton_id"]) <= 5, splits.test.labels.numpy() == 1)
    assert (extras["multiplicity"] > 0).all() and (extras["girth"] > 0).all()
    # about a fifth of the jets, and no jet on both sides (pT values are continuous, so unique)
    n_total = 30 * 20
    assert 0.1 * n_total < len(splits.test) < 0.3 * n_total
    test_pt = set(np.round(extras["pt"], 3))
    energy = splits.train.images[:, 0].sum((1, 2))
    assert len(test_pt) == len(extras["pt"]) and len(energy) > 0


def test_balance_sample_keeps_every_training_jet(synthetic_file):
    balanced = load(synthetic_file, val_size=0)
    kept = load(synthetic_file, val_size=0, balance="sample")
    assert len(kept.train) > len(balanced.train)
    assert kept.train.labels.float().mean() < 0.5  # the raw gluon majority
    assert len(kept.test) == len(balanced.test)    # the test split is always balanced


def test_aligned_sources_centre_and_normalise(synthetic_file):
    raw = load(synthetic_file, val_size=0)
    aligned = load(synthetic_file, source="jets-aligned", val_size=0)
    norm = load(synthetic_file, source="jets-aligned-norm", val_size=0)
    # re-pixelised, not normalised: the same totals as the stored images (inside the window)
    torch.testing.assert_close(aligned.test.images.sum((2, 3)), raw.test.images.sum((2, 3)), rtol=0.05, atol=1.0)
    # centred: the energy-weighted centroid sits at the image centre (pixel edge 16)
    img = aligned.train.images[:, 0]
    grid = torch.arange(32, dtype=torch.float32) + 0.5
    for axis in (1, 2):
        centroid = (img.sum(axis) * grid).sum(1) / img.sum((1, 2))
        assert (centroid - 16).abs().median() < 0.5
    sums = norm.train.images[:, 0].sum((1, 2))
    torch.testing.assert_close(sums, torch.ones_like(sums))


def test_source_errors(synthetic_file, tmp_path):
    with pytest.raises(DataError, match="needs data.path"):
        load_data(DataConfig(source="jets", path=None))
    with pytest.raises(DataError, match="no such jets file"):
        load(tmp_path / "missing.h5")
    one_block = tmp_path / "one-block.h5"  # block 0 is a training block: no test jets
    with JetFile.open(one_block, SETTINGS, seed=0, versions={}) as f:
        f.append(synthetic_block(0, np.random.default_rng(1)))
    with pytest.raises(DataError, match="test split has no jets of one class"):
        load(one_block, val_size=0)


def test_train_and_evaluate_prints_the_physics_table(synthetic_file, tmp_path, capsys):
    overrides = [f"data.path={synthetic_file}", "data.val_size=40", "model=logreg", "train.epochs=1",
                 "train.batch_size=64", f"runs_dir={tmp_path}", "device=cpu", "monitor.sanity_at_start=false"]
    assert main(["train", "jetnet", "--quiet", "--json", *overrides]) == 0
    run_dir = json.loads(capsys.readouterr().out)["run_dir"]
    assert main(["evaluate", run_dir, "--json"]) == 0
    physics = json.loads(capsys.readouterr().out)["physics"]
    assert set(physics["taggers"]) == {"CNN", "multiplicity", "width (girth)", "mass"}
    # the synthetic gluons have twice the constituents: multiplicity separates them well
    assert physics["taggers"]["multiplicity"]["auc"] > 0.9
    assert main(["evaluate", run_dir]) == 0
    text = capsys.readouterr().out
    assert "| multiplicity |" in text and "gluon rejection at 50%" in text


def test_jetnet_recipe_has_the_seeds_hyperparameters():
    from cnnlab.config import load_config
    from cnnlab.models import build_model

    cfg = load_config("jetnet")
    assert (cfg.data.source, cfg.model.arch, cfg.optim.name) == ("jets", "jetnet", "rmsprop")
    assert (cfg.optim.lr, cfg.optim.rho, cfg.optim.eps, cfg.optim.l2) == (0.002, 0.9, 1e-8, 1e-4)
    assert cfg.train.batch_size == 1024
    model = build_model(cfg.model, (3, 32, 32), 2)
    assert model(torch.zeros(4, 3, 32, 32)).shape == (4, 2)


def test_report_compares_the_network_with_classic_discriminants(synthetic_file, tmp_path):
    """`cnnlab report` on a jets run: the rejection plot holds the network and the discriminants
    computed on the same test jets, and the results table gets the AUC margin."""
    from cnnlab.physics.metrics import physics_report
    from cnnlab.report import build_report, collect_run
    from cnnlab.report.figures import physics_rejection

    args = ["train", "--quiet", "--json", "data.source=jets", f"data.path={synthetic_file}",
            "data.val_size=40", "model=fc16 relu fc", "train.epochs=1", "train.batch_size=32",
            f"runs_dir={tmp_path}", "device=cpu"]
    assert main(args) == 0
    run_dir = next(tmp_path.glob("*/config.yaml")).parent
    run = collect_run(run_dir, device="cpu")
    assert physics_rejection(run) is not None
    expected = physics_report(run.test.labels.numpy(), run.test.probabilities.numpy(), run.classes,
                              run.test_features)
    assert set(expected["taggers"]) == {"CNN", "multiplicity", "width (girth)", "mass"}
    assert run.extra["auc_margin_over_best_classic"] == pytest.approx(expected["margin"]["auc"])
    report = build_report([run_dir], tmp_path / "r.html")
    html = (tmp_path / "r.html").read_text()
    assert "Rejection vs efficiency" in html and "AUC margin over best classic" in html
    assert report.figures >= 8


def test_jet_prep_steps_replace_the_sources_own(synthetic_file):
    aligned = load(synthetic_file, source="jets-aligned", val_size=0)
    as_steps = load(synthetic_file, source="jets", val_size=0, jet_prep=["centre", "rotate", "flip"])
    torch.testing.assert_close(as_steps.train.images, aligned.train.images)
    norm = load(synthetic_file, source="jets-aligned-norm", val_size=0)
    torch.testing.assert_close(load(synthetic_file, source="jets", val_size=0,
                                    jet_prep=["center", "rotate", "flip", "normalize"]).train.images,
                               norm.train.images)
    # an empty list turns the aligned source's steps off: the stored images
    raw = load(synthetic_file, val_size=0)
    torch.testing.assert_close(load(synthetic_file, source="jets-aligned", val_size=0,
                                    jet_prep=[]).train.images, raw.train.images)
    # centring alone moves the centroid but leaves each image's total
    centred = load(synthetic_file, val_size=0, jet_prep=["centre"])
    assert not torch.allclose(centred.train.images, raw.train.images)
    torch.testing.assert_close(centred.test.images.sum((2, 3)), raw.test.images.sum((2, 3)),
                               rtol=0.05, atol=1.0)


@pytest.mark.parametrize("steps, message", [
    (["rotat"], "Did you mean 'rotate'"),
    (["normalise", "centre"], "must be the last"),
])
def test_jet_prep_errors_name_the_step(steps, message):
    with pytest.raises(ValueError, match=message):
        DataConfig(source="jets", jet_prep=steps)


def test_jet_prep_needs_a_jets_source():
    with pytest.raises(ValueError, match="jets sources only"):
        DataConfig(source="mnist", jet_prep=["centre"])
