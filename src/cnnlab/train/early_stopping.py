"""Early stopping, both algorithms of seeds/001 ("Early Stopping"), as a trainer callback.

``train.early_stopping`` selects one (``train.early_stopping: patience`` is short for
``{algorithm: patience}``); ``train.epochs`` (or ``iterations``) stays the hard maximum.

1. ``patience``: after each epoch, compare the monitored validation metric with the best so
   far; stop once at least ``min_epochs`` have run and ``patience`` epochs in a row brought no
   improvement (the seed's ``while nEpoch < minEpochs or patience < maxPatience``).
2. ``threshold``: keep a budget of training examples, first ``budget_epochs`` epochs' worth;
   whenever the metric improves by more than ``min_delta``, raise the budget to twice the
   examples seen so far (never lower it); stop when the examples seen reach the budget.
   Checks happen at epoch ends, so examples seen = epochs x training-set size.

Both restore the best parameters: with early stopping on, the trainer's "best" checkpoint is
chosen by the *monitored* metric (:func:`cnnlab.train.trainer.best_metric`), so ``best.pt``
(which ``Trainer.finish`` evaluates on the test set) holds those weights. Monitoring a metric the run does not have is an error that lists the
ones it has.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cnnlab.configbase import Section
from cnnlab.errors import ConfigError
from cnnlab.optim.monitor import improvement, metric_value, resolve_mode
from cnnlab.train.callbacks import CALLBACKS, Callback

KEY = "train.early_stopping"


class EarlyStoppingConfig(Section):
    """``train.early_stopping``: which algorithm, what it watches, and its limits."""

    algorithm: Literal["none", "patience", "threshold"] = Field(
        "none", description="none | patience (seeds/001 algorithm 1) | threshold (algorithm 2: budget doubling)")
    monitor: str = Field("val_acc", description="metric column watched (val_acc, val_loss, ...)")
    mode: Literal["auto", "min", "max"] = Field("auto", description="whether the metric should go up (max) "
                                                "or down (min); auto guesses from the name")
    min_delta: float = Field(0.0, ge=0, description="an improvement over the best so far must exceed "
                             "this to reset patience or double the budget (any improvement moves the best weights)")
    patience: int = Field(5, ge=1, description="patience: epochs without improvement before stopping")
    min_epochs: int = Field(0, ge=0, description="patience: never stop before this many epochs")
    budget_epochs: float = Field(5.0, gt=0, description="threshold: initial budget, in epochs' worth "
                                 "of examples")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"algorithm": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _mode_known(self) -> "EarlyStoppingConfig":
        try:
            resolve_mode(self.monitor, self.mode, f"{KEY}.monitor")
        except ConfigError as exc:  # pydantic reports ValueErrors with the file and key
            raise ValueError(str(exc)) from None
        return self


class EarlyStopping(Callback):
    """The callback. State (best value and epoch, patience counter, budget) resumes exactly."""

    all_ranks = True  # under DDP every rank must stop at the same epoch (same val metrics: same decision)

    def __init__(self, cfg: EarlyStoppingConfig):
        self.cfg = cfg
        self.mode = resolve_mode(cfg.monitor, cfg.mode, f"{KEY}.monitor")
        self.best: float | None = None        # best value seen: its epoch's weights are kept
        self.best_epoch = 0
        self.best_val_acc: float | None = None
        self.wait = 0                         # epochs since the last improvement > min_delta
        self.budget = cfg.budget_epochs       # in epochs' worth of examples

    def on_train_start(self, trainer) -> None:
        if self.cfg.monitor.startswith("val_") and trainer.splits.val is None:
            raise ConfigError(f"{KEY}.monitor: '{self.cfg.monitor}' needs a validation split, and this "
                              "run has none (data.val_size is 0)")

    def update(self, row: dict) -> bool:
        """Account for one epoch's row; True when training should stop. (No trainer needed.)"""
        value = metric_value(row, self.cfg.monitor, f"{KEY}.monitor")
        epoch = int(row["epoch"])
        gain = improvement(value, self.best, self.mode)
        if gain > self.cfg.min_delta:
            self.wait = 0
            self.budget = max(self.budget, 2.0 * epoch)  # seeds/001: 2 x data points seen
        else:
            self.wait += 1
        if gain > 0:  # any improvement moves the best weights (as the Theano tutorial does)
            self.best, self.best_epoch, self.best_val_acc = value, epoch, row.get("val_acc")
        if self.cfg.algorithm == "patience":
            return epoch >= self.cfg.min_epochs and self.wait >= self.cfg.patience
        return epoch >= self.budget

    def on_epoch_end(self, trainer, row: dict) -> bool:
        stop = self.update(row)
        if stop:
            why = (f"no improvement of {self.cfg.monitor} for {self.wait} epochs"
                   if self.cfg.algorithm == "patience" else
                   f"the budget of {self.budget:g} epochs' worth of examples is used up")
            trainer.say(f"early stopping ({self.cfg.algorithm}): {why}; best {self.cfg.monitor} "
                        f"{self.best:.4g} at epoch {self.best_epoch}")
        return stop

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc,
                "wait": self.wait, "budget": self.budget}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
        self.best_val_acc = state["best_val_acc"]
        self.wait, self.budget = int(state["wait"]), float(state["budget"])

    def __repr__(self) -> str:
        return (f"EarlyStopping({self.cfg.algorithm}, monitor={self.cfg.monitor} ({self.mode}), "
                f"best={self.best} at epoch {self.best_epoch})")


@CALLBACKS.register("early_stopping")
def early_stopping(cfg) -> EarlyStopping | None:
    """Factory: the callback when ``train.early_stopping.algorithm`` is not ``none``."""
    es = cfg.train.early_stopping
    return None if es.algorithm == "none" else EarlyStopping(es)
