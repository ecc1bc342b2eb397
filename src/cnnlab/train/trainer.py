"""The training loop: data on the device, one host sync per logging interval, atomic
checkpoints every epoch, exact resume.

Flow of one run::

    config -> build_experiment (data, fitted preprocessing, model, optimizer, schedule, loss, callbacks)
           -> for each epoch: re-seed (seed, epoch); for each batch: forward, loss (+ penalty),
              backward, step, schedule; every log_every steps: one sync -> progress bar
           -> validate -> callbacks -> metrics.csv row -> last.pt (best.pt: a copy when it is best)
           -> test error with the best checkpoint -> on_train_end

Callbacks subclass :class:`cnnlab.train.callbacks.Callback`; their state is stored by name.
Resume semantics (what may change on ``--resume``) live in :mod:`cnnlab.train.resume`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from cnnlab.atomic import atomic_write
from cnnlab.config import ExperimentConfig
from cnnlab.errors import CheckpointError, CnnlabError, TrainingDiverged
from cnnlab.optim import apply_constraints, clip_gradient_norm
from cnnlab.optim.monitor import improvement, resolve_mode
from cnnlab.train.callbacks import Callback, call_hook, callback_states, load_callback_states, overriding
from cnnlab.train.checkpoint import load_checkpoint, load_model_weights, save_checkpoint
from cnnlab.train.device import epoch_seed
from cnnlab.train.distributed import current_group, remember_run
from cnnlab.train.evaluation import SplitResult, evaluate_split
from cnnlab.train.experiment import Experiment, build_experiment
from cnnlab.train.pretrain import PRETRAIN_COLUMNS, PRETRAIN_FILE, SAMPLE_STEPS, SAMPLES_FILE
from cnnlab.train.progress import Progress
from cnnlab.train.rundir import TEST_SUMMARY, RunDir


def best_metric(cfg: ExperimentConfig) -> tuple[str, str]:
    """(metric, 'min'|'max') that decides which epoch's weights are "best" (best.pt, the test
    error): early stopping's monitored metric when it is on, else the validation accuracy."""
    es = cfg.train.early_stopping
    if es.algorithm != "none":
        return es.monitor, resolve_mode(es.monitor, es.mode, "train.early_stopping.monitor")
    return "val_acc", "max"


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


class Trainer:
    """Owns one run: its experiment (data, model, optimizer, schedule, loss, callbacks) and its
    run directory."""

    def __init__(self, cfg: ExperimentConfig, run: RunDir, *, show_progress: bool = True,
                 echo: Callable[[str], None] = print, callbacks: list[Callback] = (),
                 experiment: Experiment | None = None):
        self.cfg = cfg
        self.run = run
        self.echo = echo
        self.progress = Progress(show_progress)
        self.experiment = x = experiment or build_experiment(cfg, callbacks, show_progress=show_progress)
        self.device, self.splits, self.preprocess, self.model = x.device, x.splits, x.preprocess, x.model
        self.optimizer, self.loader, self.scheduler, self.loss = x.optimizer, x.loader, x.scheduler, x.loss
        self.callbacks = x.callbacks
        self.step_callbacks = overriding(x.callbacks, "on_step_end")  # called every step: only these
        self.speed = x.speed  # memory format, autocast, loss scaler, compiled forward (train/speed.py)
        self.group = x.group  # DDP: rank 0 writes and shows; every rank trains its shard
        if not self.group.main:
            self.progress = Progress(False)
        self.compile_seconds: float | None = None  # train.compile: the first step's time
        self.train_data = x.splits.train
        self.class_weight = x.loss.class_weight
        self.steps_per_epoch, self.total_steps, self.epochs = x.steps_per_epoch, x.total_steps, x.epochs
        self._on_device: dict[str, object] = {}  # val/test moved to the device once per run

        self.best_metric, self.best_mode = best_metric(cfg)
        self.epoch = 0  # completed epochs
        self.step = 0   # completed optimizer steps
        self.best_value: float | None = None
        self.best_val_acc: float | None = None
        self.best_epoch = 0
        self.metrics: list[dict] = []
        if x.init_report is not None:  # what a fine-tuning run starts from: in the log too
            for line in x.init_report.lines():
                self.say(line)
        if x.pretrain_report is not None:  # the RBMs' monitors: pretrain.csv, one line each in the log
            if self.group.main:
                run.write_csv(PRETRAIN_FILE, x.pretrain_report.rows, PRETRAIN_COLUMNS)
                save_checkpoint({"samples": x.pretrain_report.samples, "steps": list(SAMPLE_STEPS)},
                                run.path / SAMPLES_FILE)
            for line in x.pretrain_report.lines():
                self.say(line)
        if x.frozen:
            self.say(f"frozen (no gradient, no weight decay): {', '.join(x.frozen)}")

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
            "callbacks": callback_states(self.callbacks),
            "scaler": self.speed.scaler.state_dict() if self.speed.scaler is not None else None,
            "best_value": self.best_value,
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "classes": list(self.splits.classes),
            "input_shape": list(self.splits.input_shape),
        }

    def load_state_dict(self, state: dict, origin: str) -> None:
        """Continue from ``state``. The optimizer's moments come from the checkpoint; its
        hyperparameters (lr, momentum, betas...) from this trainer's config, so a rate changed
        on resume is the rate that trains."""
        saved_classes = list(state.get("classes", self.splits.classes))
        if saved_classes != list(self.splits.classes):
            raise CheckpointError(f"{origin}: the run was trained on classes {saved_classes[:10]}, the data "
                                  f"now has {list(self.splits.classes)[:10]}; the dataset changed")
        load_model_weights(self.model, state["model"], origin)
        self.preprocess.load_state_dict(state["preprocess"])
        configured = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])
        for group, hyper in zip(self.optimizer.param_groups, configured):
            group.update(hyper)
        self.scheduler.load_state_dict(state["scheduler"])
        load_callback_states(self.callbacks, state.get("callbacks", {}))
        if self.speed.scaler is not None and state.get("scaler"):
            self.speed.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_val_acc, self.best_epoch = state["best_val_acc"], int(state["best_epoch"])
        self.best_value = state.get("best_value", self.best_val_acc)
        # Rows of epochs after the checkpoint (a crash between the two writes) are dropped.
        self.metrics = [r for r in self.run.read_metrics() if r["epoch"] <= self.epoch]
        epochs = [r["epoch"] for r in self.metrics]
        if epochs != list(range(1, self.epoch + 1)):
            raise CheckpointError(f"{self.run.metrics_path}: holds epochs {_span(epochs)} but {origin} is after "
                                  f"epoch {self.epoch}; rows are missing, so the file is damaged (resuming "
                                  "would lose them)")

    def say(self, line: str) -> None:
        if self.group.main:
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
        # float64 sums on the device, read once per interval (in-place adds: no new tensors per step)
        data_loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        total_loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
        correct = torch.zeros((), device=dev, dtype=torch.int64)
        seen = 0
        started = time.perf_counter()
        self.progress.start_epoch(self.epoch + 1, self.epochs, steps)

        # zip stops on range first, so no batch is drawn (augmented) and thrown away at the end
        for i, (x, y) in zip(range(steps), self.loader.iterate(order, epoch=self.epoch)):
            x, y = self.group.shard(x, y)  # DDP: this rank's part of the global batch
            if self.step == 0 and self.cfg.train.compile:  # once per run: torch.compile's own cost
                compiling = time.perf_counter()
                logits, data_loss, loss = self.optimizer_step(x, y)
                loss.item()  # wait for the step: the compile time is measured, not queued
                self.compile_seconds = time.perf_counter() - compiling
                self.say(f"torch.compile: the first step took {self.compile_seconds:.1f} s (compiling the network)")
                started += self.compile_seconds  # images/s of the epoch without it
            else:
                logits, data_loss, loss = self.optimizer_step(x, y)
            if self.step_callbacks:
                call_hook(self.step_callbacks, "on_step_end", self)

            batch = len(y)
            seen += batch
            detached = loss.detach()
            interval_losses[i % log_every] = detached
            data_loss_sum += data_loss.detach().double() * batch
            total_loss_sum += detached.double() * batch
            correct += (logits.detach().argmax(1) == y).sum()

            if (i + 1) % log_every == 0 or i + 1 == steps:
                filled = (i % log_every) + 1
                # The one host sync of the interval: the sums and whether every loss was finite.
                data_sum, n_correct, finite = torch.stack(
                    [data_loss_sum, correct.double(), torch.isfinite(interval_losses[:filled]).all().double()]).tolist()
                if not finite:
                    self._diverged(interval_losses[:filled], i)
                call_hook(self.callbacks, "on_interval", self)
                elapsed = time.perf_counter() - started
                self.progress.update(filled, data_sum / seen, n_correct / seen, seen / max(elapsed, 1e-9))
        self.progress.end_epoch()
        sums = self.group.sum(torch.stack([data_loss_sum, total_loss_sum, correct.double(),
                                           torch.tensor(float(seen), device=dev, dtype=torch.float64)]))
        data_sum, total_sum, n_correct, seen = sums.tolist()
        return {"train_loss": data_sum / max(seen, 1),
                "train_total_loss": total_sum / max(seen, 1),
                "train_acc": n_correct / max(seen, 1),
                "lr": self.scheduler.lr}

    def optimizer_step(self, x: torch.Tensor, y: torch.Tensor):
        """Forward, loss (data + regularisation), backward, clip, update, max-norm, schedule.

        No host sync, except with L-BFGS, whose line search reads the loss.
        """
        oc, speed = self.cfg.optim, self.speed
        scaler = speed.scaler  # fp16 only: gradients are scaled up, then unscaled before clipping
        x = speed.batch(x)
        evaluations = []

        def closure() -> torch.Tensor:
            with speed.autocast():
                logits = speed.forward(x)
                data_loss, loss = self.loss(self.model, logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            (scaler.scale(loss) if scaler is not None else loss).backward()
            if scaler is not None:
                scaler.unscale_(self.optimizer)
            clip_gradient_norm(oc, self.model)
            evaluations.append((logits, data_loss, loss))
            return loss

        if getattr(self.optimizer, "needs_closure", False):  # L-BFGS re-evaluates the loss
            self.optimizer.step(closure)
        else:
            closure()
            if scaler is not None:  # skips the step when a gradient is inf/NaN, adapts the scale
                scaler.step(self.optimizer)
                scaler.update()
            else:
                self.optimizer.step()
        apply_constraints(oc, self.model)  # max-norm projection after the update
        self.scheduler.step_batch()
        self.step += 1
        return evaluations[0]  # the logits and losses before this step's update

    def _diverged(self, losses: torch.Tensor, i: int) -> None:
        bad = int((~torch.isfinite(losses)).nonzero()[0])
        first = self.step - (i % self.cfg.train.log_every + 1) + bad + 1
        last = self.run.checkpoint("last")
        where = (f"The last good checkpoint is {last} (epoch {self.epoch})." if last.is_file() else
                 "No checkpoint was written (this was the first epoch).")
        rms = self._input_rms()
        if not math.isfinite(rms) or rms > 1e3:  # the data, not the rate: say so
            advice = (f"The network's input (the training images after data.normalize) has RMS {rms:.3g}: "
                      "its scale, not the learning rate, is the likely cause; standardize or rescale it.")
        elif first == 1:  # no update has happened yet: the rate cannot be the cause
            advice = ("The weights have not been updated yet, so the input or the initialisation is the "
                      "cause, not the learning rate.")
        else:
            advice = "Lower optim.lr or check the input scale."
        message = (f"loss became {losses[bad].item()} at step {first} (epoch {self.epoch + 1}); "
                   f"training stopped. {where} {advice}")
        if self.group.main:
            self.run.log(f"error: {message}")
        raise TrainingDiverged(message)

    @torch.no_grad()
    def _input_rms(self) -> float:
        """RMS of the preprocessed first training images (what the network sees)."""
        out = self.preprocess(self.train_data.images[:256].to(self.device)).double()
        return float(out.pow(2).mean().sqrt())

    def split_on_device(self, name: str):
        """``splits.val`` / ``splits.test`` on the training device, moved there once per run."""
        if name not in self._on_device:
            data = getattr(self.splits, name)
            self._on_device[name] = None if data is None else data.to(self.device)
        return self._on_device[name]

    def validate(self) -> SplitResult | None:
        val = self.split_on_device("val")
        if val is None:
            return None
        return evaluate_split(self.model, val, self.preprocess, self.cfg.train.eval_batch_size,
                              self.cfg.train.tta)

    def _update_best(self, row: dict) -> bool:
        """The one place that decides whether this epoch's weights are the best so far."""
        value = row.get(self.best_metric)
        if value is None:  # no validation split: the latest weights are the best we know
            improved = True
        else:
            improved = improvement(float(value), self.best_value, self.best_mode) > 0
        if improved:
            self.best_value, self.best_epoch, self.best_val_acc = value, self.epoch, row.get("val_acc")
        return improved

    def fit(self) -> TrainResult:
        call_hook(self.callbacks, "on_train_start", self)
        while self.epoch < self.epochs:
            started = time.perf_counter()
            row = {"epoch": self.epoch + 1, **self.train_epoch()}
            val = self.validate()
            row.update(val_loss=val.loss if val else None, val_acc=val.accuracy if val else None)
            self.epoch += 1
            row["step"] = self.step
            stop = any([bool(v) for v in call_hook(self.callbacks, "on_epoch_end", self, row)])
            improved = self._update_best(row)
            self.scheduler.step_epoch(row)
            row["seconds"] = time.perf_counter() - started
            self.metrics.append(row)
            self._write_epoch(improved)
            self.say(format_epoch(row, self.epochs))
            if stop:
                self.say(f"stopped early after epoch {self.epoch}")
                break
        result = self.finish()
        call_hook(self.callbacks, "on_train_end", self, result)
        return result

    def _write_epoch(self, improved: bool) -> None:
        """metrics.csv, last.pt and (when improved) best.pt; a failed write (full disk, read-only
        folder) stops training with one line naming the file and the checkpoint that remains."""
        last = self.run.checkpoint("last")
        if not self.group.main:  # rank 0 writes; the others wait for its files (best.pt at the end)
            self.group.wait()
            return
        try:
            self.run.write_metrics(self.metrics)
            save_checkpoint(self.state_dict(), last)
            if improved:  # a byte copy, not a second serialisation
                copy_file(last, self.run.checkpoint("best"))
        except OSError as exc:
            kept = (f"the last good checkpoint is {last} (epoch {load_epoch(last)}); free space or fix "
                    f"the folder, then: cnnlab train --resume {self.run.path}" if last.is_file()
                    else "no checkpoint has been written yet")
            raise CnnlabError(f"cannot write {exc.filename or self.run.path}: {exc.strerror or exc}; "
                              f"training stopped after epoch {self.epoch}; {kept}") from None
        self.group.wait()

    def _write_test_summary(self, result: TrainResult) -> None:
        """``test.json``: the finished run's test numbers, time and hardware (what results
        tables read without loading a checkpoint). Written last: its presence means finished."""
        summary = {k: v for k, v in result.to_dict().items() if k != "run_dir"}
        summary.update(train_seconds=sum(float(r.get("seconds") or 0) for r in self.metrics),
                       hardware=hardware(self.device), world_size=self.group.world,
                       finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
        try:
            with atomic_write(self.run.path / TEST_SUMMARY, "w") as f:
                json.dump(summary, f, indent=2)
        except OSError as exc:
            raise CnnlabError(f"cannot write {exc.filename or self.run.path}: {exc.strerror or exc}; the "
                              f"training finished (checkpoints/best.pt is complete)") from None

    def finish(self) -> TrainResult:
        """Test error of the best-validation weights (the Theano tutorial's protocol)."""
        best = load_checkpoint(self.run.checkpoint("best"), self.device)
        self.model.load_state_dict(best["model"])
        test = evaluate_split(self.model, self.split_on_device("test"), self.preprocess,
                              self.cfg.train.eval_batch_size, self.cfg.train.tta)
        result = TrainResult(self.run.path, self.epoch, self.step, self.best_epoch, self.best_val_acc,
                             test.loss, test.accuracy, self.metrics)
        if self.group.main:
            self._write_test_summary(result)
        self.say(f"test error {100 * result.test_error:.2f}% (loss {test.loss:.4f}) with the weights "
                 f"of epoch {self.best_epoch}; run directory {self.run.path}")
        return result


def hardware(device: torch.device) -> str:
    """The device in words, for results tables: GPU name, or CPU with its torch thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} torch thread{'s' if torch.get_num_threads() > 1 else ''}"


def _span(epochs: list[int]) -> str:
    return "none" if not epochs else f"{epochs[0]}..{epochs[-1]} ({len(epochs)} rows)"


def load_epoch(path: Path) -> int | str:
    """The epoch a checkpoint holds ('?' if it cannot be read)."""
    try:
        return int(load_checkpoint(path)["epoch"])
    except (CheckpointError, KeyError, TypeError, ValueError):
        return "?"


def copy_file(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` atomically."""
    with source.open("rb") as src, atomic_write(target) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def format_epoch(row: dict, epochs: int) -> str:
    val = (f"  val loss {row['val_loss']:.4f} acc {100 * row['val_acc']:.2f}%"
           if row.get("val_acc") is not None else "")
    return (f"epoch {row['epoch']}/{epochs}  train loss {row['train_loss']:.4f} "
            f"acc {100 * row['train_acc']:.2f}%{val}  lr {row['lr']:.4g}  {row['seconds']:.1f}s")


def start_run(cfg: ExperimentConfig, run_dir: str | Path | None = None, **kwargs) -> Trainer:
    """A trainer on a new run directory: ``runs_dir/<name>-<time>/``, or exactly ``run_dir``.
    Under DDP rank 0 makes the directory and tells the other ranks where it is."""
    group = current_group()
    run = None
    if group.main:
        run = (RunDir.create_at(run_dir, cfg.to_yaml()) if run_dir is not None
               else RunDir.create(cfg.runs_dir, cfg.name, cfg.to_yaml()))
        remember_run(cfg.runs_dir, run.path)  # under torchrun: for a restart to resume
    run = RunDir(Path(group.share(str(run.path) if run is not None else None)))
    try:
        return Trainer(cfg, run, **kwargs)
    except BaseException:
        if group.main:
            run.discard_if_untouched()
        raise
