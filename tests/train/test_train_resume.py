"""Resume semantics (issue 12): merge, validate and check against the checkpoint before anything
is written; allowed changes take effect; refused ones exit 2 with every file of the run as it was."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from cnnlab.cli import main
from cnnlab.config import load_config
from cnnlab.train import resume_run, start_run
from cnnlab.train.callbacks import Callback
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


def _snapshot(run_dir) -> dict[str, str]:
    return {p.relative_to(run_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run_dir.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tiny_mnist_dir, tmp_path_factory):
    """A 2-epoch run (kept pristine: tests copy it)."""
    runs = tmp_path_factory.mktemp("runs")
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, runs, **{"monitor.sanity_at_start": "false"}))
    return start_run(cfg, **QUIET).fit().run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    import shutil

    target = tmp_path / finished_run.name
    shutil.copytree(finished_run, target)
    return target


@pytest.mark.parametrize("overrides, message", [
    (["model=convnet"], "model.arch"),
    (["data.normalize=none"], "data.normalize"),
    (["train.epochs=1"], "already done 2 epochs"),
    (["optim=adam"], "optim.name"),
    (["train.batch_size=20"], "train.batch_size"),
    (["seed=5"], "seed"),
    (["optim.lrr=1"], "unknown key 'optim.lrr'"),
])
def test_refused_resume_exits_2_and_changes_nothing(run_copy, overrides, message, capsys):
    before = _snapshot(run_copy)
    assert main(["train", "--resume", str(run_copy), "--quiet", *overrides]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert _snapshot(run_copy) == before  # byte-identical: config.yaml, checkpoints, logs


def test_new_learning_rate_and_schedule_are_what_trains(run_copy):
    trainer = resume_run(run_copy, ["train.epochs=3", "optim.lr=0.001", "schedule=constant"], **QUIET)
    assert all(g["lr"] == pytest.approx(0.001) for g in trainer.optimizer.param_groups)
    result = trainer.fit()
    assert result.metrics[-1]["epoch"] == 3 and result.metrics[-1]["lr"] == pytest.approx(0.001)
    saved = yaml.safe_load((run_copy / "config.yaml").read_text())
    assert saved["optim"]["lr"] == 0.001 and saved["schedule"]["name"] == "constant"
    history = yaml.safe_load((run_copy / "resumes.yaml").read_text())
    assert history["original"]["optim"]["lr"] == 0.05 and history["original"]["train"]["epochs"] == 2
    (entry,) = history["resumes"]
    assert entry["after_epoch"] == 2 and entry["changed"]["optim.lr"] == {"from": 0.05, "to": 0.001}


def test_adding_early_stopping_on_resume(run_copy):
    """Regression: callback state was matched by position (KeyError 'best')."""
    trainer = resume_run(run_copy, ["train.epochs=3", "train.early_stopping.algorithm=patience"], **QUIET)
    assert trainer.fit().epochs == 3


def test_resume_with_the_same_epochs_trains_nothing_and_writes_no_history(run_copy):
    trainer = resume_run(run_copy, ["train.epochs=2"], **QUIET)
    assert trainer.fit().epochs == 2 and not (run_copy / "resumes.yaml").exists()


def test_misspelled_hook_is_an_error():
    with pytest.raises(TypeError, match="on_epoch_ends is not a callback hook"):
        class Typo(Callback):
            def on_epoch_ends(self, trainer, row):
                return False


def test_callbacks_must_follow_the_contract(tiny_mnist_dir, tmp_path):
    class Plain:
        def on_epoch_end(self, trainer, row):
            return False

    class Twin(Callback):
        name = "monitor"  # the built-in layer monitor's name

    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path))
    with pytest.raises(TypeError, match="must subclass"):
        start_run(cfg, callbacks=[Plain()], **QUIET)
    with pytest.raises(TypeError, match="two callbacks are named 'monitor'"):
        start_run(cfg, callbacks=[Twin()], **QUIET)


def test_on_train_end_runs_once_with_the_result(tiny_mnist_dir, tmp_path):
    seen = []

    class End(Callback):
        def on_train_end(self, trainer, result):
            seen.append(result.test_acc)

    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{"train.epochs": 1}))
    result = start_run(cfg, callbacks=[End()], **QUIET).fit()
    assert seen == [result.test_acc]


def test_best_checkpoint_is_a_copy_of_last_when_best(finished_run):
    import torch

    ckpts = finished_run / "checkpoints"
    best = torch.load(ckpts / "best.pt", weights_only=True)
    assert best["epoch"] == best["best_epoch"]  # written at the epoch it names as best
    same_bytes = (ckpts / "last.pt").read_bytes() == (ckpts / "best.pt").read_bytes()
    assert same_bytes == (best["epoch"] == 2)  # the 2-epoch run: a byte copy iff the last was best


def test_layer_lr_applies_without_a_scheduler():
    """Regression: the multiplier was applied only by LRScheduler (lost in the sanity probe)."""
    from torch import nn

    from cnnlab.optim import build_optimizer, optim_config

    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    opt = build_optimizer(optim_config(lr=0.1, layer_lr={"1": 0.5}), model)
    lrs = sorted(g["lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([0.05, 0.1])
