"""Early stopping (seeds/001's two algorithms): the right stopping epoch on scripted metric
sequences (checked against a transcription of the seed's loop), the best weights restored,
"best" by the monitored metric, errors for missing metrics, exact state round trip."""

from __future__ import annotations

import math
import random

import pytest
import torch

from cnnlab.train.callbacks import Callback
from cnnlab.config import load_config
from cnnlab.errors import ConfigError
from cnnlab.train import start_run
from cnnlab.train.early_stopping import EarlyStopping, EarlyStoppingConfig
from cnnlab.train.evaluation import SplitResult
from tests.helpers import tiny_overrides

QUIET = dict(show_progress=False, echo=lambda line: None)


def stop_epoch(cfg: EarlyStoppingConfig, values: list[float], metric: str = "val_loss") -> int | None:
    es = EarlyStopping(cfg)
    for epoch, v in enumerate(values, 1):
        if es.update({"epoch": epoch, metric: v}):
            return epoch
    return None


def seed_patience_loop(scores, min_epochs, max_patience):
    """seeds/001 "Early Stopping: Implementation", transcribed (validScore: lower is better)."""
    n_epoch, patience, best_score, best_epoch = 0, 0, math.inf, 0
    while n_epoch < min_epochs or patience < max_patience:
        if n_epoch == len(scores):
            return None, best_epoch
        valid_score = scores[n_epoch]
        if valid_score < best_score:
            best_score, patience, best_epoch = valid_score, 0, n_epoch + 1
        else:
            patience += 1
        n_epoch += 1
    return n_epoch, best_epoch


def seed_threshold_loop(scores, n_train, initial_budget, threshold):
    """seeds/001 algorithm 2: budget on data points; doubled (never lowered) on improvement."""
    budget, seen, best, best_epoch = initial_budget * n_train, 0, math.inf, 0
    for epoch, score in enumerate(scores, 1):
        seen += n_train
        if best - score > threshold:
            budget = max(budget, 2 * seen)
        if score < best:
            best, best_epoch = score, epoch
        if seen >= budget:
            return epoch, best_epoch
    return None, best_epoch


def test_patience_stops_at_the_right_epoch():
    cfg = EarlyStoppingConfig(algorithm="patience", monitor="val_acc", patience=2)
    #            1    2    3     4     5
    values = [0.5, 0.6, 0.55, 0.58, 0.9]
    assert stop_epoch(cfg, values, "val_acc") == 4  # epochs 3 and 4 bring nothing
    cfg_min = EarlyStoppingConfig(algorithm="patience", monitor="val_acc", patience=2, min_epochs=6)
    assert stop_epoch(cfg_min, values + [0.8, 0.7, 0.6], "val_acc") == 7


@pytest.mark.parametrize("seed", range(20))
def test_patience_matches_the_seed_loop_on_random_sequences(seed):
    rng = random.Random(seed)
    scores = [rng.random() for _ in range(40)]
    min_epochs, max_patience = rng.randint(0, 10), rng.randint(1, 6)
    cfg = EarlyStoppingConfig(algorithm="patience", monitor="val_loss", patience=max_patience,
                              min_epochs=min_epochs)
    es = EarlyStopping(cfg)
    stopped = None
    for epoch, v in enumerate(scores, 1):
        if es.update({"epoch": epoch, "val_loss": v}):
            stopped = epoch
            break
    assert (stopped, es.best_epoch) == seed_patience_loop(scores, min_epochs, max_patience)


@pytest.mark.parametrize("seed", range(20))
def test_threshold_doubling_matches_the_seed_algorithm(seed):
    rng = random.Random(seed)
    # a slowly improving, noisy validation loss
    scores = [1.0 / (1 + 0.3 * e) + 0.05 * rng.random() for e in range(60)]
    budget, threshold = rng.choice([1, 2, 3]), rng.choice([0.0, 0.005, 0.02])
    cfg = EarlyStoppingConfig(algorithm="threshold", monitor="val_loss", budget_epochs=budget,
                              min_delta=threshold)
    es = EarlyStopping(cfg)
    stopped = None
    for epoch, v in enumerate(scores, 1):
        if es.update({"epoch": epoch, "val_loss": v}):
            stopped = epoch
            break
    assert (stopped, es.best_epoch) == seed_threshold_loop(scores, 1000, budget, threshold)


def test_threshold_budget_doubles_on_improvement():
    cfg = EarlyStoppingConfig(algorithm="threshold", monitor="val_loss", budget_epochs=2, min_delta=0.01)
    # improvements at epochs 1, 2 and 3 push the budget to 6 epochs; 4-6 are flat
    assert stop_epoch(cfg, [1.0, 0.9, 0.8, 0.8, 0.799, 0.85, 0.7]) == 6


def test_missing_metric_is_an_error_listing_the_metrics():
    es = EarlyStopping(EarlyStoppingConfig(algorithm="patience", monitor="val_auc"))
    row = {"epoch": 1, "step": 10, "train_loss": 1.0, "val_loss": 0.9, "val_acc": 0.7, "lr": 0.1}
    with pytest.raises(ConfigError) as err:
        es.update(row)
    assert "train.early_stopping.monitor: 'val_auc'" in str(err.value)
    assert "train_loss, val_acc, val_loss" in str(err.value).replace("lr, ", "")
    with pytest.raises(ConfigError, match="train.early_stopping.mode"):
        load_config(None, ["train.early_stopping.algorithm=patience", "train.early_stopping.monitor=lr"])


def test_state_round_trip():
    cfg = EarlyStoppingConfig(algorithm="threshold", monitor="val_acc", budget_epochs=1)
    a = EarlyStopping(cfg)
    for epoch, v in enumerate([0.1, 0.3, 0.2], 1):
        a.update({"epoch": epoch, "val_acc": v})
    b = EarlyStopping(cfg)
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() == {"best": 0.3, "best_epoch": 2, "best_val_acc": 0.3,
                                                "wait": 1, "budget": 4.0}


# -- inside the trainer ------------------------------------------------------------------------

def _scripted_trainer(folder, runs, val_loss, val_acc, **extra):
    """A real (tiny) run whose validation metrics follow a script."""
    base = {"model": "logreg", "train.epochs": len(val_loss), "train.batch_size": 500}
    base.update(extra)
    trainer = start_run(load_config(None, tiny_overrides(folder, runs, **base)), **QUIET)
    script = iter(zip(val_loss, val_acc))

    def validate():
        loss, acc = next(script)
        return SplitResult(loss, acc, torch.zeros(0, 10), torch.zeros(0, dtype=torch.long))

    trainer.validate = validate
    snapshots = {}

    class Snapshot(Callback):  # runs after early stopping: the weights at the end of each epoch
        def on_epoch_end(self, trainer, row):
            snapshots[row["epoch"]] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    trainer.callbacks.append(Snapshot())
    return trainer, snapshots


def test_trainer_stops_and_restores_the_best_weights_by_the_monitored_metric(tiny_mnist_dir, tmp_path):
    # val_loss is best at epoch 2, val_acc at epoch 4: monitoring val_loss must keep epoch 2
    val_loss = [1.0, 0.5, 0.6, 0.7, 0.8, 0.4, 0.3]
    val_acc = [0.5, 0.6, 0.7, 0.9, 0.8, 0.95, 0.97]
    trainer, snapshots = _scripted_trainer(
        tiny_mnist_dir, tmp_path, val_loss, val_acc, **{
            "train.early_stopping.algorithm": "patience", "train.early_stopping.monitor": "val_loss",
            "train.early_stopping.patience": 3})
    result = trainer.fit()
    assert result.epochs == 5 and len(result.metrics) == 5  # epochs 3, 4, 5 bring nothing
    assert result.best_epoch == 2 and result.best_val_acc == 0.6
    for k, v in trainer.model.state_dict().items():  # finish() loaded best.pt
        torch.testing.assert_close(v, snapshots[2][k], rtol=0, atol=0)
    assert not all(torch.equal(snapshots[5][k], snapshots[2][k]) for k in snapshots[2])


def test_early_stopping_without_validation_split_is_an_error(tiny_mnist_dir, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_mnist_dir, tmp_path, **{
        "model": "logreg", "data.val_size": 0, "train.early_stopping.algorithm": "patience"}))
    with pytest.raises(ConfigError, match="needs a validation split"):
        start_run(cfg, **QUIET).fit()
