"""End to end on a small real MNIST subset: training, run directories, exact resume,
SIGKILL mid-run, NaN handling, evaluate, predict and the CLI's exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.errors import CheckpointError, TrainingDiverged
from cnnlab.models import MODELS
from cnnlab.train import RunDir, load_checkpoint, resume_run, start_run
from tests.helpers import interrupt_in_epoch, tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


def _train(folder, runs, **extra):
    cfg = load_config(None, tiny_overrides(folder, runs, **extra))
    trainer = start_run(cfg, **QUIET)
    return trainer, trainer.fit()


def test_tiny_run_learns_and_writes_its_run_directory(tiny_mnist_dir, tmp_path):
    trainer, result = _train(tiny_mnist_dir, tmp_path)
    run = RunDir.open(result.run_dir)
    assert run.path.parent == tmp_path and run.path.name.startswith("lenet5-mnist-")
    rows = run.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2]
    assert list(rows[0])[:9] == ["epoch", "step", "train_loss", "train_total_loss", "train_acc",
                                 "val_loss", "val_acc", "lr", "seconds"]
    assert rows[-1]["step"] == 2 * 30  # 1500 training images / batch 50
    assert result.test_acc > 0.8  # 1,500 images, 2 epochs: far above chance (10%)
    assert run.checkpoint("last").is_file() and run.checkpoint("best").is_file()
    assert "test error" in run.log_path.read_text()
    # the saved config reproduces the run's config
    assert load_config(str(run.config_path)).to_dict() == trainer.cfg.to_dict()


def test_checkpoint_loads_with_weights_only(tiny_mnist_dir, tmp_path):
    _, result = _train(tiny_mnist_dir, tmp_path, **{"train.epochs": 1})
    path = RunDir(result.run_dir).checkpoint("last")
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 1 and "model" in state and "optimizer" in state


def _weights(run_dir: Path) -> dict:
    return load_checkpoint(RunDir(run_dir).checkpoint("last"))["model"]


def _assert_same_run(a: Path, b: Path):
    for key, value in _weights(a).items():
        assert torch.equal(value, _weights(b)[key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert strip(RunDir(a).read_metrics()) == strip(RunDir(b).read_metrics())


def test_resume_after_interruption_is_exact(tiny_mnist_dir, tmp_path):
    """2 epochs straight == 1 epoch, interrupted in the 2nd, resume: same weights and metrics."""
    _, straight = _train(tiny_mnist_dir, tmp_path / "a")
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path / "b", **{"train.log_every": 5}))
    interrupted = start_run(cfg, callbacks=[interrupt_in_epoch(1)], **QUIET)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = resume_run(interrupted.run.path, **QUIET).fit()
    _assert_same_run(straight.run_dir, resumed.run_dir)
    assert resumed.test_acc == straight.test_acc


def test_extending_a_finished_run_is_exact(tiny_mnist_dir, tmp_path):
    """With a constant rate, 1 epoch + resume with train.epochs=2 + 1 epoch == 2 epochs."""
    const = {"schedule": "constant", "optim.lr": 0.02}
    _, straight = _train(tiny_mnist_dir, tmp_path / "a", **const)
    _, first = _train(tiny_mnist_dir, tmp_path / "b", **const, **{"train.epochs": 1})
    resumed = resume_run(first.run_dir, ["train.epochs=2"], **QUIET).fit()
    _assert_same_run(straight.run_dir, resumed.run_dir)


def test_resume_errors(tmp_path, tiny_mnist_dir):
    with pytest.raises(CheckpointError, match="no such run directory"):
        resume_run(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a cnnlab run directory"):
        resume_run(tmp_path / "empty")
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path))
    run = RunDir.create(tmp_path, "fresh", cfg.to_yaml())
    with pytest.raises(CheckpointError, match="no checkpoint yet"):
        resume_run(run.path, **QUIET)


def test_a_setup_error_leaves_no_empty_run_directory(tiny_mnist_dir, tmp_path):
    from cnnlab.errors import ConfigError

    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, optim="adagrad", schedule="onecycle",
                                           **{"schedule.momentum_cycle": "[0.95, 0.85]"}))
    with pytest.raises(ConfigError, match="no momentum to cycle"):
        start_run(cfg, **QUIET)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_from_other_architecture_is_explained(tiny_mnist_dir, tmp_path):
    _, result = _train(tiny_mnist_dir, tmp_path, **{"train.epochs": 1})
    state = load_checkpoint(RunDir(result.run_dir).checkpoint("last"))
    state["model"] = {k + "_other": v for k, v in state["model"].items()}
    from cnnlab.train.checkpoint import save_checkpoint
    save_checkpoint({k: v for k, v in state.items() if k != "format"}, RunDir(result.run_dir).checkpoint("last"))
    with pytest.raises(CheckpointError, match="different architecture"):
        resume_run(result.run_dir, **QUIET)


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    from cnnlab.train.checkpoint import save_checkpoint
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)
    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1  # the raw file: this state has no other fields
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


def test_damaged_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "last.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable cnnlab checkpoint"):
        load_checkpoint(path)


class _NaNAfter(torch.nn.Module):
    """A model whose outputs turn NaN from its 7th forward pass in training mode on."""

    def __init__(self, input_shape, num_classes):
        super().__init__()
        self.fc = torch.nn.Linear(int(np.prod(input_shape)), num_classes)
        self.calls = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        out = self.fc(x.flatten(1))
        return out * float("nan") if self.training and self.calls >= 7 else out


@pytest.fixture
def nan_model():
    MODELS._items["test-nan-after-7"] = _NaNAfter
    yield "test-nan-after-7"
    del MODELS._items["test-nan-after-7"]


def test_nan_loss_stops_and_names_the_step(tiny_mnist_dir, tmp_path, nan_model):
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{"model": nan_model,
                                                                        "train.log_every": 5}))
    trainer = start_run(cfg, **QUIET)
    with pytest.raises(TrainingDiverged, match="at step 7 "):
        trainer.fit()
    assert not trainer.run.checkpoint("last").exists()  # nothing NaN was saved


def test_cli_train_json_evaluate_predict(tiny_mnist_dir, tmp_path, capsys):
    assert main(["train", "--quiet", "--json", *tiny_overrides(tiny_mnist_dir, tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    run_dir = result["run_dir"]
    assert main(["evaluate", run_dir, "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["test_error"] == pytest.approx(result["test_error"])
    cm = np.array(evaluation["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 500
    assert np.trace(cm) / 500 == pytest.approx(evaluation["test_accuracy"])

    # predict: a real test digit written as PNG is classified as its label
    from cnnlab.data import DataConfig, load_data
    test = load_data(DataConfig(source="idx", path=str(tiny_mnist_dir), val_size=0)).test
    paths = []
    for i in range(5):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(test.images[i, 0].numpy()).save(path)
        paths.append(str(path))
    assert main(["predict", run_dir, *paths, "-k", "2", "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    assert len(predictions) == 5 and all(len(p["top"]) == 2 for p in predictions)
    hits = sum(p["top"][0]["class"] == str(int(test.labels[i])) for i, p in enumerate(predictions))
    assert hits >= 4


@pytest.mark.parametrize("argv, message", [
    (["train", "optim.lrr=1"], "unknown key 'optim.lrr'"),
    (["train", "no-such-recipe"], "no such config file or recipe"),
    (["evaluate", "/nonexistent/run"], "no such run directory"),
    (["predict", "/nonexistent/run", "x.png"], "no such run directory"),
    (["train", "--resume", "/nonexistent/run"], "no such run directory"),
    (["train", "model=lenet55"], "unknown model 'lenet55'. Did you mean 'lenet5'"),
])
def test_user_mistakes_exit_2_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_predict_unreadable_image(tiny_mnist_dir, tmp_path, capsys):
    _, result = _train(tiny_mnist_dir, tmp_path, **{"train.epochs": 1})
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(result.run_dir), str(bad)]) == 2
    assert "bad.png: not a readable image" in capsys.readouterr().err


def test_print_config_shows_resolved_values(capsys):
    assert main(["train", "--print-config", "optim.lr=0.123"]) == 0
    out = capsys.readouterr().out
    assert "lr: 0.123" in out and "arch: lenet5" in out


def test_sigkill_mid_run_resumes_from_last_checkpoint(tiny_mnist_dir, tmp_path):
    args = [sys.executable, "-m", "cnnlab", "train", "--quiet",
            *tiny_overrides(tiny_mnist_dir, tmp_path, **{"train.epochs": 4, "train.batch_size": 10})]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list(tmp_path.glob("*/checkpoints/last.pt")):
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    run_dir = next(tmp_path.glob("lenet5-mnist-*"))
    done_before = load_checkpoint(RunDir(run_dir).checkpoint("last"))["epoch"]
    assert 1 <= done_before < 4
    result = resume_run(run_dir, **QUIET).fit()
    assert [r["epoch"] for r in RunDir(run_dir).read_metrics()] == [1, 2, 3, 4]
    assert result.epochs == 4 and result.test_acc > 0.8


def test_evaluate_and_predict_a_run_whose_preprocessing_changes_the_input_shape(tiny_mnist_dir, tmp_path, capsys):
    """PCA whitening to 40 dimensions: the network sees 40 values, not 1x28x28."""
    overrides = tiny_overrides(tiny_mnist_dir, tmp_path, **{"train.epochs": 1, "model": "mlp"})
    overrides.append("data.normalize=[scale, {pca: {dims: 40}}]")
    assert main(["train", "--quiet", "--json", *overrides]) == 0
    run_dir = json.loads(capsys.readouterr().out)["run_dir"]
    assert main(["evaluate", run_dir, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_accuracy"] > 0.5
    from cnnlab.data import DataConfig, load_data
    test = load_data(DataConfig(source="idx", path=str(tiny_mnist_dir), val_size=0)).test
    path = tmp_path / "digit.png"
    Image.fromarray(test.images[0, 0].numpy()).save(path)
    assert main(["predict", run_dir, str(path), "--json"]) == 0
