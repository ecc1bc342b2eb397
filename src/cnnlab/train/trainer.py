"""The training loop: data on the device, no host sync inside a logging interval, atomic
checkpoints every epoch, exact resume.

Flow of one run::

    config -> load_data -> fit preprocess (train only) -> build_model -> build_optimizer
           -> for each epoch: re-seed (seed, epoch); for each batch: forward, loss (+ penalty),
              backward, step, schedule; every log_every steps: one sync -> progress bar
           -> validate -> metrics.csv row -> checkpoints last (+ best) -> callbacks
           -> test error with the best checkpoint

Callbacks (early stopping, monitoring) are small objects with ``on_epoch_end(trainer, row)``
returning True to stop, and ``state_dict``/``load_state_dict`` so resume is exact.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.nn.functional as F

from cnnlab.config import ExperimentConfig, build_config
from cnnlab.data import DatasetSplits, build_train_loader, fit_preprocess, load_data, loss_weights
from cnnlab.errors import CheckpointError, TrainingDiverged
from cnnlab.models import build_model
from cnnlab.optim import (LRScheduler, apply_constraints, build_optimizer, clip_gradient_norm,
                          regularization)
from cnnlab.train.callbacks import build_callbacks, call_hook
from cnnlab.train.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from cnnlab.train.device import epoch_seed, resolve_device
from cnnlab.train.evaluation import SplitResult, evaluate_split
from cnnlab.train.progress import Progress
from cnnlab.train.rundir import RunDir

_STORAGE_DTYPES = {"uint8": None, "float16": torch.float16, "float32": torch.float32}


class Callback(Protocol):
    """What the trainer calls. Implement any subset; missing hooks are skipped.

    - ``on_train_start(trainer)``: once, before the first epoch (also after a resume);
    - ``on_interval(trainer)``: every ``train.log_every`` steps, after the optimizer step, while
      ``p.grad`` still holds the last batch's gradients (cheap monitoring, off the hot path);
    - ``on_epoch_end(trainer, row) -> bool``: may add columns to ``row``; True stops training;
    - ``state_dict()`` / ``load_state_dict(state)``: stored in checkpoints for exact resume.
    """

    def on_epoch_end(self, trainer: "Trainer", row: dict) -> bool: ...


@dataclass
class TrainResult:
    run_dir: Path
    epochs: int
    steps: int
    best_epoch: int
    best_val_acc: float | None
    test_loss: float
    test_acc: float
    metrics: list[dict] = field(default_factory=list)

    @property
    def test_error(self) -> float:
        return 1.0 - self.test_acc

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "epochs": self.epochs, "steps": self.steps,
                "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc,
                "test_loss": self.test_loss, "test_acc": self.test_acc,
                "test_error": self.test_error}


def _to_storage(images: torch.Tensor, dtype_name: str, device: torch.device) -> torch.Tensor:
    dtype = _STORAGE_DTYPES[dtype_name]
    if dtype is None and images.dtype == torch.uint8:
        return images.to(device)
    return images.to(device, dtype or images.dtype)


class Trainer:
    """Owns one run: its config, data, model, optimizer, schedule and run directory."""

    def __init__(self, cfg: ExperimentConfig, run: RunDir, *, show_progress: bool = True,
                 echo: Callable[[str], None] = print, callbacks: list[Callback] = ()):
        self.cfg = cfg
        self.run = run
        self.echo = echo
        self.progress = Progress(show_progress)
        self.callbacks = build_callbacks(cfg) + list(callbacks)
        self.device = resolve_device(cfg.device)

        self.splits: DatasetSplits = load_data(cfg.data, cfg.seed)
        self.preprocess = fit_preprocess(cfg.data, self.splits).to(self.device)
        self.train_data = self.splits.train
        self.train_data.images = _to_storage(self.train_data.images, cfg.data.device_dtype, self.device)
        self.train_data.labels = self.train_data.labels.to(self.device)

        torch.manual_seed(cfg.seed)
        model_input = self.preprocess.output_shape(self.splits.input_shape)  # whitening may reshape
        self.model = build_model(cfg.model, model_input, self.splits.num_classes).to(self.device)
        self.optimizer = build_optimizer(cfg.optim, self.model)

        tc = cfg.train
        # Augmentation and class-balanced sampling apply to the training split only.
        self.loader = build_train_loader(cfg.data, self.train_data, tc.batch_size, self.preprocess,
                                         self.splits.num_classes)
        self.class_weight = loss_weights(cfg.data, self.splits, self.device)  # data.balance: weight
        # seeds/003: iterations_per_epoch = ceil(num_train / batch_size)
        self.steps_per_epoch = len(self.loader)
        self.total_steps = tc.iterations or tc.epochs * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.scheduler = LRScheduler(cfg.schedule, self.optimizer, self.steps_per_epoch, self.total_steps)

        self.epoch = 0  # completed epochs
        self.step = 0   # completed optimizer steps
        self.best_val_acc: float | None = None
        self.best_epoch = 0
        self.metrics: list[dict] = []

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "preprocess": self.preprocess.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "callbacks": [cb.state_dict() if hasattr(cb, "state_dict") else {} for cb in self.callbacks],
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "classes": list(self.splits.classes),
            "input_shape": list(self.splits.input_shape),
        }

    def load_state_dict(self, state: dict, origin: str) -> None:
        load_model_weights(self.model, state["model"], origin)
        self.preprocess.load_state_dict(state["preprocess"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        for cb, cb_state in zip(self.callbacks, state.get("callbacks", [])):
            if hasattr(cb, "load_state_dict"):
                cb.load_state_dict(cb_state)
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_val_acc, self.best_epoch = state["best_val_acc"], int(state["best_epoch"])
        # Rows of epochs after the checkpoint (a crash between the two writes) are dropped.
        self.metrics = [r for r in self.run.read_metrics() if r["epoch"] <= self.epoch]

    def resume(self) -> None:
        path = self.run.checkpoint("last")
        if not path.is_file():
            raise CheckpointError(f"{self.run.path}: has no checkpoint yet (the run stopped before "
                                  "its first epoch ended); start it again instead")
        self.load_state_dict(load_checkpoint(path, self.device), str(path))
        self.say(f"resumed {self.run.path} after epoch {self.epoch} (step {self.step})")

    def say(self, line: str) -> None:
        self.echo(line)
        self.run.log(line)

    # -- the loop -------------------------------------------------------------------------
    def train_epoch(self) -> dict:
        """One pass over the training set. Returns the epoch's training metrics."""
        self.model.train()
        seed = epoch_seed(self.cfg.seed, self.epoch)
        torch.manual_seed(seed)  # dropout and augmentation randomness, reproducible per epoch
        order = torch.Generator().manual_seed(seed)
        steps = min(self.steps_per_epoch, self.total_steps - self.step)
        log_every = self.cfg.train.log_every

        dev = self.device
        interval_losses = torch.zeros(log_every, device=dev)
        data_loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        total_loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        seen = 0
        started = time.perf_counter()
        self.progress.start_epoch(self.epoch + 1, self.epochs, steps)

        for i, (x, y) in enumerate(self.loader.iterate(order, epoch=self.epoch)):
            if i == steps:
                break
            logits, data_loss, loss = self.optimizer_step(x, y)

            batch = len(y)
            seen += batch
            detached = loss.detach()
            interval_losses[i % log_every] = detached
            data_loss_sum += data_loss.detach().double() * batch
            total_loss_sum += detached.double() * batch
            correct += (logits.detach().argmax(1) == y).sum()

            if (i + 1) % log_every == 0 or i + 1 == steps:
                self._check_finite(interval_losses[: (i % log_every) + 1], i)
                call_hook(self.callbacks, "on_interval", self)
                elapsed = time.perf_counter() - started
                self.progress.update((i % log_every) + 1, data_loss_sum.item() / seen,
                                     correct.item() / seen, seen / max(elapsed, 1e-9))
        self.progress.end_epoch()
        return {"train_loss": data_loss_sum.item() / max(seen, 1),
                "train_total_loss": total_loss_sum.item() / max(seen, 1),
                "train_acc": correct.item() / max(seen, 1),
                "lr": self.scheduler.lr}

    def optimizer_step(self, x: torch.Tensor, y: torch.Tensor):
        """Forward, loss (data + regularisation), backward, clip, update, max-norm, schedule.

        No host sync, except with L-BFGS, whose line search reads the loss.
        """
        oc = self.cfg.optim
        evaluations = []

        def closure() -> torch.Tensor:
            logits = self.model(x)
            data_loss = F.cross_entropy(logits, y, weight=self.class_weight,
                                        label_smoothing=oc.label_smoothing)
            penalty = regularization(oc, self.model)
            loss = data_loss if penalty is None else data_loss + penalty
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            clip_gradient_norm(oc, self.model)
            evaluations.append((logits, data_loss, loss))
            return loss

        if getattr(self.optimizer, "needs_closure", False):  # L-BFGS re-evaluates the loss
            self.optimizer.step(closure)
        else:
            closure()
            self.optimizer.step()
        apply_constraints(oc, self.model)  # max-norm projection after the update
        self.scheduler.step_batch()
        self.step += 1
        return evaluations[0]  # the logits and losses before this step's update

    def _check_finite(self, losses: torch.Tensor, i: int) -> None:
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            first = self.step - (i % self.cfg.train.log_every + 1) + int(bad[0]) + 1
            raise TrainingDiverged(
                f"loss became {losses[int(bad[0])].item()} at step {first} (epoch {self.epoch + 1}); "
                f"training stopped. The last good checkpoint is {self.run.checkpoint('last')}. "
                "Lower optim.lr or check the input scale.")

    def validate(self) -> SplitResult | None:
        if self.splits.val is None:
            return None
        val = self.splits.val.to(self.device)
        return evaluate_split(self.model, val, self.preprocess, self.cfg.train.eval_batch_size)

    def fit(self) -> TrainResult:
        call_hook(self.callbacks, "on_train_start", self)
        while self.epoch < self.epochs:
            started = time.perf_counter()
            row = {"epoch": self.epoch + 1, **self.train_epoch()}
            val = self.validate()
            row.update(val_loss=val.loss if val else None, val_acc=val.accuracy if val else None)
            self.epoch += 1
            row["step"] = self.step
            improved = val is not None and (self.best_val_acc is None or val.accuracy > self.best_val_acc)
            if improved or val is None:
                self.best_val_acc, self.best_epoch = (val.accuracy if val else None), self.epoch
            stop = any([bool(v) for v in call_hook(self.callbacks, "on_epoch_end", self, row)])
            self.scheduler.step_epoch(row)
            row["seconds"] = time.perf_counter() - started
            self.metrics.append(row)
            self.run.write_metrics(self.metrics)
            state = self.state_dict()
            save_checkpoint(state, self.run.checkpoint("last"))
            if self.best_epoch == self.epoch:
                save_checkpoint(state, self.run.checkpoint("best"))
            self.say(format_epoch(row, self.epochs))
            if stop:
                self.say(f"stopped early after epoch {self.epoch}")
                break
        return self.finish()

    def finish(self) -> TrainResult:
        """Test error of the best-validation weights (the Theano tutorial's protocol)."""
        best = load_checkpoint(self.run.checkpoint("best"), self.device)
        self.model.load_state_dict(best["model"])
        test = evaluate_split(self.model, self.splits.test.to(self.device), self.preprocess,
                              self.cfg.train.eval_batch_size)
        result = TrainResult(self.run.path, self.epoch, self.step, self.best_epoch, self.best_val_acc,
                             test.loss, test.accuracy, self.metrics)
        self.say(f"test error {100 * result.test_error:.2f}% (loss {test.loss:.4f}) with the weights "
                 f"of epoch {self.best_epoch}; run directory {self.run.path}")
        return result


def format_epoch(row: dict, epochs: int) -> str:
    val = (f"  val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.2f}%"
           if row.get("val_acc") is not None else "")
    return (f"epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f} "
            f"acc {100 * row['train_acc']:.2f}%{val}  lr {row['lr']:.4g}  {row['seconds']:.1f}s")


def start_run(cfg: ExperimentConfig, **kwargs) -> Trainer:
    run = RunDir.create(cfg.runs_dir, cfg.name, cfg.to_yaml())
    try:
        return Trainer(cfg, run, **kwargs)
    except BaseException:
        run.discard_if_untouched()
        raise


def resume_run(path: str | Path, overrides: list[str] = (), **kwargs) -> Trainer:
    from cnnlab.config import apply_override

    run = RunDir.open(path)
    data = run.read_config()
    for override in overrides:
        apply_override(data, override)
    cfg = build_config(data, str(run.config_path))
    if overrides:
        run.config_path.write_text(cfg.to_yaml())
    trainer = Trainer(cfg, run, **kwargs)
    trainer.resume()
    return trainer
