"""The optimisation options inside the real training loop, on a small MNIST subset: mini-batch
semantics (epochs or iterations, batch 1 / 4 / 1024), label smoothing, clipping, max-norm,
L-BFGS full batch, the logged lr, and exact resume with a metric-driven schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cnnlab.config import load_config
from cnnlab.train import RunDir, load_checkpoint, resume_run, start_run
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


def _trainer(folder, runs, **extra):
    base = {"model": "logreg", "train.epochs": 1}
    base.update(extra)
    return start_run(load_config(None, tiny_overrides(folder, runs, **base)), **QUIET)


@pytest.mark.parametrize("batch_size, iterations", [(1, 7), (4, 30), (1024, None)])
def test_batch_sizes_and_iterations(tiny_mnist_dir, tmp_path, batch_size, iterations):
    """iterations_per_epoch = ceil(N / B) (seeds/003); `iterations` overrides epochs."""
    extra = {"train.batch_size": batch_size}
    if iterations:
        extra["train.iterations"] = iterations
    trainer = _trainer(tiny_mnist_dir, tmp_path, **extra)
    n = len(trainer.train_data.labels)
    assert trainer.steps_per_epoch == math.ceil(n / batch_size)
    result = trainer.fit()
    assert result.steps == (iterations or trainer.steps_per_epoch)
    assert result.epochs == math.ceil(result.steps / trainer.steps_per_epoch)
    assert all(math.isfinite(r["train_loss"]) for r in result.metrics)


def test_step_applies_smoothing_clipping_and_max_norm(tiny_mnist_dir, tmp_path):
    """One optimizer step by hand == the trainer's step with all three options on."""
    trainer = _trainer(tiny_mnist_dir, tmp_path, **{
        "optim": "sgd", "optim.momentum": 0, "optim.lr": 0.5, "optim.label_smoothing": 0.1,
        "optim.clip_grad_norm": 0.05, "optim.max_norm": 0.2, "optim.l2": 0.01})
    model = trainer.model
    x, y = next(iter(trainer.loader.iterate(torch.Generator().manual_seed(0))))
    # reference: smoothed CE + 1/2 lambda |W|^2, grad clipped to norm 0.05, SGD, renorm rows to 0.2
    params = dict(model.named_parameters())
    weight_name = next(n for n, p in params.items() if p.ndim > 1)
    ref_data = F.cross_entropy(model(x), y, label_smoothing=0.1)
    ref_loss = ref_data + 0.005 * params[weight_name].pow(2).sum()
    grads = torch.autograd.grad(ref_loss, list(params.values()))
    norm = float(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    assert norm > 0.05  # clipping is active
    expected = {n: p.detach() - 0.5 * g * 0.05 / (norm + 1e-6) for (n, p), g in zip(params.items(), grads)}
    w = expected[weight_name]
    row_norms = w.norm(dim=1, keepdim=True)
    expected[weight_name] = torch.where(row_norms > 0.2, w * 0.2 / (row_norms + 1e-7), w)

    _, data_loss, total = trainer.optimizer_step(x, y)
    assert float(data_loss.detach()) == pytest.approx(float(ref_data.detach()), rel=1e-6)
    assert float(total.detach()) == pytest.approx(float(ref_loss.detach()), rel=1e-6)  # data + L2 term
    for name, value in expected.items():
        torch.testing.assert_close(params[name].detach(), value, atol=1e-6, rtol=1e-5)
    assert params[weight_name].norm(dim=1).max() <= 0.2 + 1e-6


def test_max_norm_bound_holds_after_every_step(tiny_mnist_dir, tmp_path):
    trainer = _trainer(tiny_mnist_dir, tmp_path, **{"optim.lr": 2.0, "optim.max_norm": 0.3})
    weight = next(p for p in trainer.model.parameters() if p.ndim > 1)
    for i, (x, y) in enumerate(trainer.loader.iterate(torch.Generator().manual_seed(0))):
        trainer.optimizer_step(x, y)
        assert weight.detach().norm(dim=1).max() <= 0.3 + 1e-5, f"step {i}"
        if i == 10:
            break
    assert weight.detach().norm(dim=1).max() > 0.29  # the constraint was active, not vacuous


def test_lbfgs_full_batch_trains(tiny_mnist_dir, tmp_path):
    extra = {"optim": "lbfgs", "optim.lbfgs_max_iter": 5, "train.batch_size": 2000, "train.epochs": 3,
             "schedule": "constant"}
    trainer = _trainer(tiny_mnist_dir, tmp_path, **extra)
    result = trainer.fit()
    assert trainer.steps_per_epoch == 1
    losses = [r["train_loss"] for r in result.metrics]
    assert losses[-1] < losses[0] < math.log(10) + 1e-6
    assert result.test_acc > 0.6


def test_logged_lr_is_the_rate_used(tiny_mnist_dir, tmp_path):
    """Step schedule 'multiply by 0.5 every epoch': epoch e is trained at lr 0.5^(e-1)."""
    trainer = _trainer(tiny_mnist_dir, tmp_path, **{
        "optim.lr": 0.1, "schedule": "step", "schedule.step_epochs": 1, "schedule.gamma": 0.5,
        "train.epochs": 3, "train.batch_size": 500})
    result = trainer.fit()
    assert [r["lr"] for r in result.metrics] == pytest.approx([0.1, 0.05, 0.025])


def test_resume_is_exact_with_plateau_schedule_and_early_stopping(tiny_mnist_dir, tmp_path):
    extra = {"optim": "adam", "schedule": "plateau", "schedule.monitor": "train_loss",
             "schedule.patience": 0, "schedule.gamma": 0.5, "schedule.threshold": 10.0,
             "train.early_stopping.algorithm": "patience", "train.early_stopping.patience": 9,
             "train.batch_size": 250, "train.epochs": 3}
    straight = _trainer(tiny_mnist_dir, tmp_path / "a", **extra).fit()
    # threshold 10: only the first epoch counts as improvement; with patience 0 the rate halves
    # after every later epoch, taking effect in the next one
    assert [r["lr"] for r in straight.metrics] == pytest.approx([1e-3, 1e-3, 5e-4])

    first = _trainer(tiny_mnist_dir, tmp_path / "b", **{**extra, "train.epochs": 3})
    first.epochs = 1  # stop after one epoch, as a kill would
    first.fit()
    resumed = resume_run(first.run.path, **QUIET)
    resumed.fit()
    a = load_checkpoint(RunDir(straight.run_dir).checkpoint("last"))
    b = load_checkpoint(RunDir(resumed.run.path).checkpoint("last"))
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], atol=0, rtol=0)
    assert a["scheduler"] == b["scheduler"] and a["callbacks"] == b["callbacks"]
