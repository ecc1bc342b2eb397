"""DBN pre-training (issue 18): the pretrain: section, greedy layer-wise RBMs written into the
MLP's hidden layers through build_experiment, pretrain.csv, and resume (never redone)."""

from __future__ import annotations

import hashlib

import pytest
import torch

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.errors import ConfigError
from cnnlab.train import resume_run, start_run
from cnnlab.train.experiment import build_experiment
from cnnlab.train.pretrain import PRETRAIN_FILE
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)
DBN = {"model.arch": "'fc24 sigmoid fc16 sigmoid fc'", "data.normalize": "scale", "pretrain": "dbn",
       "pretrain.epochs": 2, "pretrain.batch_size": 50, "pretrain.lr": 0.05,
       "monitor.sanity_at_start": "false", "monitor.layer_stats": "false"}


def _cfg(folder, runs, **extra):
    return load_config(None, tiny_overrides(folder, runs, **{**DBN, **extra}))


@pytest.mark.parametrize("overrides, message", [
    (["model.arch=fc20 relu fc"], "must be followed by 'sigmoid'"),
    (["model.arch=fc"], "needs hidden fc layers"),
    (["pretrain.layers=3"], "has 2 hidden fc layer(s)"),
    (["model.init_from=runs/x"], "not both"),
    (["pretrain.k={1: 1, 0: 2}"], "start at 1"),
    (["pretrain.algorithm=gibbs"], "pretrain.algorithm"),
])
def test_pretrain_config_errors_name_the_key(overrides, message):
    base = ["model.arch=fc20 sigmoid fc20 sigmoid fc", "pretrain=dbn"]
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(None, base + overrides)


def test_shorthand_and_defaults():
    cfg = load_config("dbn-mnist", ["pretrain.k={1: 1, 3: 2}"])
    assert cfg.pretrain.method == "dbn" and cfg.pretrain.k == {1: 1, 3: 2}
    assert load_config(None).pretrain.method == "none"


def test_pretraining_replaces_the_hidden_layers_only_and_is_reproducible(tiny_mnist_dir, tmp_path):
    dbn = build_experiment(_cfg(tiny_mnist_dir, tmp_path))
    again = build_experiment(_cfg(tiny_mnist_dir, tmp_path))
    plain = build_experiment(_cfg(tiny_mnist_dir, tmp_path, pretrain="none"))
    w = {k: v for k, v in dbn.model.state_dict().items()}
    for key, value in plain.model.state_dict().items():
        same = torch.equal(w[key], value)
        assert same == key.startswith("fc3"), key  # the output layer keeps its random init
        assert torch.equal(w[key], again.model.state_dict()[key])
    rows = dbn.pretrain_report.rows
    assert [(r["rbm"], r["epoch"]) for r in rows] == [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]
    assert [(r["visible"], r["hidden"]) for r in rows[::3]] == [(784, 24), (24, 16)]
    for rbm in (rows[:3], rows[3:]):  # CD-1 lowers the reconstruction error and raises the PL
        assert rbm[-1]["recon_error"] < rbm[0]["recon_error"]
        assert rbm[-1]["pseudo_likelihood"] > rbm[0]["pseudo_likelihood"]


def test_binary_units_need_inputs_in_0_1(tiny_mnist_dir, tmp_path):
    with pytest.raises(ConfigError, match="data.normalize=scale"):
        build_experiment(_cfg(tiny_mnist_dir, tmp_path, **{"data.normalize": "standardize"}))
    gaussian = build_experiment(_cfg(tiny_mnist_dir, tmp_path, **{"data.normalize": "standardize",
                                                                   "pretrain.visible": "gaussian",
                                                                   "pretrain.lr": 0.001}))
    first = gaussian.pretrain_report.rows[:3]
    assert first[0]["pseudo_likelihood"] is None and first[-1]["recon_error"] < first[0]["recon_error"]


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_resume_neither_redoes_nor_changes_the_pretraining(tiny_mnist_dir, tmp_path):
    """1 epoch + resume to 2 == 2 epochs straight (constant rate), and pretrain.csv is untouched."""
    const = {"schedule": "constant", "pretrain.algorithm": "pcd", "pretrain.particles": 20}
    straight = start_run(_cfg(tiny_mnist_dir, tmp_path / "a", **const), **QUIET).fit()
    first = start_run(_cfg(tiny_mnist_dir, tmp_path / "b", **const, **{"train.epochs": 1}), **QUIET).fit()
    table = first.run_dir / PRETRAIN_FILE
    before = _digest(table)
    assert table.read_text().splitlines()[0].startswith("rbm,layer,visible,hidden,epoch,k,recon_error")
    log_lines = (first.run_dir / "train.log").read_text().count("pretrain rbm")
    assert log_lines == 2
    resumed = resume_run(first.run_dir, ["train.epochs=2"], **QUIET).fit()
    assert _digest(table) == before
    assert (first.run_dir / "train.log").read_text().count("pretrain rbm") == log_lines
    a = torch.load(straight.run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    b = torch.load(resumed.run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    without_time = lambda path: [line.rsplit(",", 1)[0] for line in path.read_text().splitlines()]  # noqa: E731
    assert without_time(straight.run_dir / PRETRAIN_FILE) == without_time(table)  # the same RBMs
    assert main(["train", "--resume", str(first.run_dir), "--quiet", "pretrain.epochs=5"]) == 2
