"""The data pipeline inside training: augmentation and whitening end to end on a small real
MNIST subset, exact resume with augmentation, class imbalance (sampling and loss weights)."""

from __future__ import annotations

import pytest
import torch

from cnnlab.commands.evaluate import evaluate_run
from cnnlab.config import load_config
from cnnlab.data import DeviceLoader, build_train_loader, loss_weights
from cnnlab.data.balance import class_weights, sample_weights
from cnnlab.data.dataset import ArrayDataset, DatasetSplits
from cnnlab.errors import DataError
from cnnlab.train import load_checkpoint, resume_run, start_run
from cnnlab.train.rundir import RunDir
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)
AUGMENT = "[{crop: {padding: 2, mode: constant}}, alternating_flip, {cutout: {size: 6}}]"


def _cfg(folder, runs, **extra):
    return load_config(None, tiny_overrides(folder, runs, **extra))


def test_augmented_whitened_run_learns_resumes_exactly_and_evaluates(tiny_mnist_dir, tmp_path):
    """Augmentation + fitted preprocessing: learns; 1 epoch + resume + 1 epoch == 2 epochs
    straight (the augmentation RNG is re-seeded per epoch); evaluate restores the fitted
    mean image from the run."""
    extra = {"data.augment": AUGMENT, "data.normalize": "[mean_image, {gcn: {scale: 3, lam: 10}}]",
             "schedule": "constant", "optim.lr": 0.02, "train.batch_size": 100}
    straight = start_run(_cfg(tiny_mnist_dir, tmp_path / "a", **extra), **QUIET).fit()
    assert straight.test_acc > 0.6  # 1,500 images, 2 epochs, chance is 10%
    evaluated = evaluate_run(str(straight.run_dir), "best", "cpu")
    assert evaluated["test_accuracy"] == pytest.approx(straight.test_acc, abs=1e-9)

    first = start_run(_cfg(tiny_mnist_dir, tmp_path / "b", **{**extra, "train.epochs": 1}), **QUIET)
    first.fit()
    resumed = resume_run(first.run.path, ["train.epochs=2"], **QUIET)
    resumed.fit()
    a = load_checkpoint(RunDir(straight.run_dir).checkpoint("last"))["model"]
    b = load_checkpoint(resumed.run.checkpoint("last"))["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_expand_shifts_multiplies_the_training_set(tiny_mnist_dir, tmp_path):
    from cnnlab.data import load_data

    cfg = _cfg(tiny_mnist_dir, tmp_path, **{"data.expand_shifts": "true"})
    splits = load_data(cfg.data)
    assert len(splits.train) == 5 * 1500 and len(splits.val) == 500 and len(splits.test) == 500


def imbalanced(n_major=900, n_minor=100) -> DatasetSplits:
    labels = torch.cat([torch.zeros(n_major, dtype=torch.long), torch.ones(n_minor, dtype=torch.long)])
    images = torch.arange(len(labels)).view(-1, 1, 1, 1).float()
    data = ArrayDataset(images, labels)
    return DatasetSplits(train=data, test=data, classes=["gluon", "quark"])


def test_class_weights_formula():
    splits = imbalanced()
    w = class_weights(splits.train.labels, 2)
    torch.testing.assert_close(w, torch.tensor([1000 / (2 * 900), 1000 / (2 * 100)]))
    # weighted mean over the training set is 1
    assert (w[splits.train.labels].mean() - 1).abs() < 1e-6
    cfg = load_config(None, ["data.balance=weight"]).data
    torch.testing.assert_close(loss_weights(cfg, splits), w)
    assert loss_weights(load_config(None, []).data, splits) is None


def test_balanced_sampling_draws_classes_equally_and_reproducibly():
    splits = imbalanced()
    cfg = load_config(None, ["data.balance=sample"]).data
    loader = build_train_loader(cfg, splits.train, 100, None, 2)
    labels = torch.cat([y for _, y in loader.iterate(torch.Generator().manual_seed(0))])
    assert len(labels) == 1000 and 0.45 < labels.float().mean() < 0.55
    again = torch.cat([y for _, y in loader.iterate(torch.Generator().manual_seed(0))])
    assert torch.equal(labels, again)
    plain = DeviceLoader(splits.train, 100, shuffle=True)
    assert torch.cat([y for _, y in plain.iterate(torch.Generator().manual_seed(0))]).float().mean() == 0.1
    w = sample_weights(splits.train.labels, 2)
    assert w[0] == pytest.approx(1 / 900) and w[-1] == pytest.approx(1 / 100)


def test_empty_class_cannot_be_balanced():
    with pytest.raises(DataError, match="class\\(es\\) b have no training examples"):
        class_weights(torch.zeros(5, dtype=torch.long), 2, ["a", "b"])


def test_weighted_loss_is_used_by_the_trainer(tiny_mnist_dir, tmp_path):
    import copy

    trainer = start_run(_cfg(tiny_mnist_dir, tmp_path, **{"data.balance": "weight", "train.epochs": 1}), **QUIET)
    counts = torch.bincount(trainer.splits.train.labels.cpu(), minlength=10).double()
    torch.testing.assert_close(trainer.class_weight, (1500 / (10 * counts)).float())
    x, y = next(iter(trainer.loader.iterate(torch.Generator().manual_seed(0))))
    trainer.loss.class_weight = torch.linspace(0.1, 2.0, 10)  # far from uniform, to see it matter
    before = copy.deepcopy(trainer.model)
    _, data_loss, _ = trainer.optimizer_step(x, y)
    per_example = torch.nn.functional.cross_entropy(before(x), y, reduction="none").detach()
    w = trainer.loss.class_weight[y]
    torch.testing.assert_close(data_loss.detach(), (w * per_example).sum() / w.sum())
    assert not torch.allclose(data_loss.detach(), per_example.mean())
