"""Seed architectures train end to end through ``cnnlab train model=NAME`` on real MNIST
digits, and spec architectures (string and YAML list) survive the run directory round trip."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from cnnlab.cli import main
from cnnlab.models import MODELS
from tests.helpers import tiny_overrides

# In CI (the others run with -m slow; each zoo model's build and gradients are tested elsewhere).
FAST = ["logreg", "mlp", "convnet"]


def _train(tiny_mnist_dir, tmp_path, capsys, *extra, config=None, **settings):
    argv = ["train", "--quiet", "--json", *([config] if config else []),
            *tiny_overrides(tiny_mnist_dir, tmp_path, **{"train.epochs": 1, **settings}), *extra]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("name", FAST)
def test_zoo_model_trains_through_the_cli(name, tiny_mnist_dir, tmp_path, capsys):
    result = _train(tiny_mnist_dir, tmp_path, capsys, f"model={name}", **{"train.iterations": 4})
    assert math.isfinite(result["test_loss"])
    # the run directory rebuilds the same network for evaluation
    assert main(["evaluate", result["run_dir"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_error"] == pytest.approx(result["test_error"])


def test_mlp_learns_mnist_in_two_epochs(tiny_mnist_dir, tmp_path, capsys):
    result = _train(tiny_mnist_dir, tmp_path, capsys, "model=mlp", **{"train.epochs": 2})
    assert result["test_error"] < 0.5  # guessing among 10 digits: 0.9


@pytest.mark.slow
def test_convnet_learns_mnist_in_one_epoch(tiny_mnist_dir, tmp_path, capsys):
    result = _train(tiny_mnist_dir, tmp_path, capsys, "model=convnet")
    assert result["test_error"] < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(MODELS.names()) - set(FAST)))
def test_big_zoo_model_trains_through_the_cli(name, tiny_mnist_dir, tmp_path, capsys):
    result = _train(tiny_mnist_dir, tmp_path, capsys, f"model={name}", **{"train.iterations": 4})
    assert math.isfinite(result["test_loss"])


def test_spec_architectures_train_and_reload(tiny_mnist_dir, tmp_path, capsys):
    result = _train(tiny_mnist_dir, tmp_path, capsys, "model.arch=conv5-8p2 bn relu pool2 keep0.8 fc",
                    "model.init=he", **{"train.iterations": 4})
    assert main(["evaluate", result["run_dir"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_error"] == pytest.approx(result["test_error"])

    config = tmp_path / "listed.yaml"
    config.write_text(yaml.safe_dump({"model": {
        "arch": [{"type": "conv", "filters": 8, "kernel": 5}, "relu", "pool2",
                 {"type": "dropout", "drop": 0.2, "mode": "classic"}, {"type": "fc", "units": 32}, "tanh", "fc"],
        "init": "xavier"}}))
    result = _train(tiny_mnist_dir, tmp_path, capsys, config=str(config), **{"train.iterations": 4})
    assert math.isfinite(result["test_loss"])
