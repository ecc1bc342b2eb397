"""Monitoring during `cnnlab train`: the sanity callback at start, layers.csv (checked against
an independent spy callback), resume trimming, TensorBoard (optional) and its error path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlab.train.callbacks import Callback
from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.errors import ConfigError
from cnnlab.monitor.layerlog import read_layers
from cnnlab.monitor.layers import parametric_layers
from cnnlab.train import resume_run, start_run
from tests.helpers import tiny_overrides


class Spy(Callback):
    """Reference: records at each interval the weight-gradient norms (NumPy) and the relative
    change of the weights over the next optimizer step, by epoch of measurement."""

    def __init__(self):
        self.grads: dict[int, list[np.ndarray]] = {}
        self.ratios: dict[int, list[np.ndarray]] = {}
        self.before = None

    def on_train_start(self, trainer):
        self.trainer = trainer
        self.layers = parametric_layers(trainer.model)
        trainer.optimizer.register_step_post_hook(self.after_step)

    def on_interval(self, trainer):
        g = [np.linalg.norm(l.weight.grad.numpy().ravel()) for l in self.layers]
        self.grads.setdefault(trainer.epoch + 1, []).append(np.array(g))
        self.before = [l.weight.detach().numpy().copy() for l in self.layers]

    def after_step(self, *args):
        if self.before is not None:
            r = [np.linalg.norm((l.weight.detach().numpy() - b).ravel()) / np.linalg.norm(b.ravel())
                 for l, b in zip(self.layers, self.before)]
            self.ratios.setdefault(self.trainer.epoch + 1, []).append(np.array(r))
            self.before = None


@pytest.fixture(scope="module")
def small_mnist_dir(tmp_path_factory):
    """700 train (200 of them validation) / 200 test MNIST images: 10 steps of 50 per epoch."""
    from tests.helpers import write_idx_subset

    folder = tmp_path_factory.mktemp("small-mnist")
    write_idx_subset(folder, n_train=700, n_test=200)
    return folder


def cfg_for(folder, runs, *extra):
    return load_config(None, tiny_overrides(folder, runs, **{"data.val_size": 200}) + list(extra))


def test_layers_csv_matches_an_independent_reference(small_mnist_dir, tmp_path):
    spy = Spy()
    trainer = start_run(cfg_for(small_mnist_dir, tmp_path, "train.log_every=4"), show_progress=False,
                        echo=lambda line: None, callbacks=[spy])
    trainer.fit()
    rows = read_layers(trainer.run.path / "layers.csv")
    names = ["conv1", "conv2", "fc1", "fc2"]
    for epoch in (1, 2):
        got = {r["layer"]: r for r in rows if r["epoch"] == epoch}
        assert set(got) == set(names) | {"tanh1", "tanh2", "tanh3"}
        np.testing.assert_allclose([got[n]["grad_norm"] for n in names],
                                   np.mean(spy.grads[epoch], axis=0), rtol=1e-4)
        np.testing.assert_allclose([got[n]["update_ratio"] for n in names],
                                   np.mean(spy.ratios[epoch], axis=0), rtol=1e-3)
        assert all(0 <= got[f"tanh{i}"]["saturated_fraction"] < 0.5 for i in (1, 2, 3))
        assert got["conv1"]["step"] == 10 * epoch
    assert len(spy.grads[1]) == 3  # 10 steps per epoch: intervals after steps 4, 8 and 10

    log = (trainer.run.path / "train.log").read_text()
    assert "sanity: initial loss" in log and "checks ok" in log
    sanity = json.loads((trainer.run.path / "sanity.json").read_text())
    assert sanity["passed"] and sanity["clean"]


def test_resume_drops_layer_rows_past_the_checkpoint(small_mnist_dir, tmp_path):
    trainer = start_run(cfg_for(small_mnist_dir, tmp_path, "train.epochs=1"), show_progress=False,
                        echo=lambda line: None)
    trainer.fit()
    path = trainer.run.path / "layers.csv"
    # A crash after writing layers.csv but before the checkpoint leaves rows of epoch 2 behind.
    first = path.read_text()
    path.write_text(first + "".join(line.replace("1,10,", "2,20,", 1) + "\n"
                                    for line in first.splitlines()[1:]))
    resumed = resume_run(trainer.run.path, ["train.epochs=2"], show_progress=False, echo=lambda line: None)
    resumed.fit()
    rows = read_layers(path)
    assert [r["epoch"] for r in rows].count(1) == 7 and [r["epoch"] for r in rows].count(2) == 7
    assert not (trainer.run.path / "train.log").read_text().count("sanity:") > 1  # not rerun on resume


def test_broken_config_is_warned_about_at_train_start_and_training_goes_on(small_mnist_dir, tmp_path, capsys):
    overrides = tiny_overrides(small_mnist_dir, tmp_path, **{"train.iterations": 3}) + [
        "model.arch=fc100 sigmoid fc", "data.normalize=none"]
    assert main(["train", *overrides, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "sanity fail: sigmoid1:" in out and "data.normalize=standardize" in out
    assert "test error" in out


def test_monitor_can_be_switched_off(small_mnist_dir, tmp_path):
    cfg = cfg_for(small_mnist_dir, tmp_path, "train.iterations=2", "monitor.layer_stats=false",
                  "monitor.sanity_at_start=false")
    trainer = start_run(cfg, show_progress=False, echo=lambda line: None)
    assert not any(type(cb).__name__ in ("LayerMonitor", "SanityAtStart") for cb in trainer.callbacks)
    trainer.fit()
    assert not (trainer.run.path / "layers.csv").exists() and not (trainer.run.path / "sanity.json").exists()


def test_tensorboard_events_hold_scalars_histograms_and_filters(small_mnist_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = cfg_for(small_mnist_dir, tmp_path, "train.epochs=1", "train.log_every=4", "monitor.tensorboard=true")
    trainer = start_run(cfg, show_progress=False, echo=lambda line: None)
    trainer.fit()
    events = EventAccumulator(str(trainer.run.path / "tensorboard"),
                              size_guidance={"scalars": 0, "histograms": 0, "images": 0}).Reload()
    tags = events.Tags()
    assert {"metrics/train_loss", "metrics/val_acc", "grad_norm/conv1", "update_ratio/fc2",
            "saturated_fraction/tanh1"} <= set(tags["scalars"])
    assert {"weights/conv1", "grads/conv1", "weights/fc2"} <= set(tags["histograms"])
    assert tags["images"] == ["filters/conv1"]
    logged = events.Scalars("grad_norm/conv1")[0].value
    csv_value = next(r["grad_norm"] for r in read_layers(trainer.run.path / "layers.csv") if r["layer"] == "conv1")
    assert logged == pytest.approx(csv_value, rel=1e-6)  # the same numbers as layers.csv


def test_tensorboard_missing_is_a_clear_config_error(small_mnist_dir, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError, match="monitor.tensorboard=true needs the tensorboard package"):
        start_run(cfg_for(small_mnist_dir, tmp_path, "monitor.tensorboard=true"), show_progress=False)
    assert main(["train", *tiny_overrides(small_mnist_dir, tmp_path), "monitor.tensorboard=true"]) == 2
    assert "pip install 'cnnlab[tensorboard]'" in capsys.readouterr().err
