"""``cnnlab train --resume RUN [KEY=VALUE...]``: what may change when a run continues.

The overrides are merged onto the run's own config, validated, and checked against the run's
last checkpoint *before anything is written*; on any failure every file of the run is as it
was. Then:

- **allowed**: more epochs or iterations (``train.epochs``, ``train.iterations``); the
  learning rate, the rule's hyperparameters and the regularisers (``optim.*`` except the rule
  itself: the new values are what trains, written into the optimizer's groups, and
  ``metrics.csv``'s ``lr`` column shows them); the schedule (``schedule.*``; continued at the
  step reached); callbacks (``train.early_stopping``, ``train.lookahead``, ``monitor.*``); ``train.tta``; logging; the device.
- **refused**: the data and its preprocessing (``data.*``), the model (``model.*``, including
  ``model.init_from``, which only says where a new run starts -- a resume never reads it again,
  so the source may be gone -- and ``model.freeze``, since the optimizer's state covers the
  layers that were trainable; start a new run with ``model.init_from=RUN`` instead), the
  pre-training (``pretrain.*``: it ran once before the first epoch, its RBMs are in the
  checkpoint's weights and ``pretrain.csv`` is left as it is), the update
  rule (``optim.name``: its state would not fit), the batch size, the seed, the run's name and
  folder, and fewer epochs or iterations than already done.

Every resume that changes the config is recorded in ``RUN/resumes.yaml`` (the original config,
then per resume: when, after which epoch, the overrides and the keys changed), so the config the
run started with is never lost; ``config.yaml`` always holds the config now in force.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import yaml

from cnnlab.atomic import atomic_write
from cnnlab.config import ExperimentConfig, build_config, merge, overrides_to_dict
from cnnlab.errors import CheckpointError, ConfigError
from cnnlab.monitor.layerlog import FILENAME as LAYERS_FILE, read_layers
from cnnlab.train.checkpoint import load_checkpoint
from cnnlab.train.experiment import build_experiment
from cnnlab.train.rundir import RunDir
from cnnlab.train.trainer import Trainer
from cnnlab.yamlio import read_yaml_file

#: key prefixes a resume may not change, with the reason shown to the user
REFUSED = {
    "model.init_from": "the run's weights come from its own checkpoint; init_from only sets where a new "
                       "run starts (start one with model.init_from=THIS_RUN)",
    "model.freeze": "the optimizer's state covers the layers that were trainable; to train other layers, "
                    "start a new run with model.init_from=THIS_RUN",
    "data.": "the data and its preprocessing are part of what the checkpoint learned",
    "model.": "the checkpoint's weights are for the run's own architecture",
    "pretrain.": "pre-training ran once, before the first epoch, and its result is in the checkpoint's "
                 "weights; a resume neither redoes nor changes it",
    "optim.name": "the optimizer's saved state belongs to its update rule",
    "train.batch_size": "the schedule and the epoch's batches are laid out for the run's batch size",
    "seed": "the run's shuffling and augmentation follow its seed",
    "name": "the run already has its directory",
    "runs_dir": "the run already has its directory",
}
HISTORY_FILE = "resumes.yaml"


def flatten(data: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_keys(old: ExperimentConfig, new: ExperimentConfig) -> dict[str, tuple]:
    a, b = flatten(old.to_dict()), flatten(new.to_dict())
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def check_changes(changes: dict[str, tuple], state: dict, origin: str) -> None:
    """ConfigError naming every refused key (nothing has been written yet)."""
    problems = []
    for key, (was, now) in changes.items():
        for prefix, why in REFUSED.items():
            if key == prefix or (prefix.endswith(".") and key.startswith(prefix)):
                problems.append(f"{key}: {was!r} -> {now!r} cannot change on resume ({why}); "
                                "start a new run instead")
                break
    done_epochs, done_steps = int(state["epoch"]), int(state["step"])
    for key, done, unit in (("train.epochs", done_epochs, "epochs"), ("train.iterations", done_steps, "steps")):
        if key in changes and changes[key][1] is not None and changes[key][1] < done:
            problems.append(f"{key}={changes[key][1]}: the run has already done {done} {unit}; "
                            f"give at least {done} (more to train longer)")
    if problems:
        raise ConfigError(f"cannot resume {origin} with these overrides:\n  " + "\n  ".join(problems))


def record(run: RunDir, old: ExperimentConfig, new: ExperimentConfig, overrides, changes, state) -> None:
    """Write the new config and append to the run's resume history (both atomically)."""
    path = run.path / HISTORY_FILE
    history = read_history(path) or {"original": old.to_dict(), "resumes": []}
    history["resumes"].append({
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), "after_epoch": int(state["epoch"]),
        "after_step": int(state["step"]), "overrides": list(overrides),
        "changed": {k: {"from": was, "to": now} for k, (was, now) in changes.items()}})
    with atomic_write(path, "w") as f:
        yaml.safe_dump(history, f, sort_keys=False)
    with atomic_write(run.config_path, "w") as f:
        f.write(new.to_yaml())


def read_history(path: Path) -> dict | None:
    """``resumes.yaml`` (None if there is none); a CheckpointError naming it if it is not the
    history cnnlab writes -- rewriting it would lose the run's original config."""
    if not path.is_file():
        return None
    history = read_yaml_file(path, CheckpointError)
    if not (isinstance(history, dict) and isinstance(history.get("original"), dict)
            and isinstance(history.get("resumes"), list)):
        raise CheckpointError(f"{path}: not a resume history (a mapping with 'original', the config the run "
                              "started with, and 'resumes', a list); it is damaged. Repair it, or move it "
                              "away to start a new history")
    return history


def resume_run(path: str | Path, overrides=(), **trainer_options):
    """A trainer continuing the run at ``path`` (see the module docstring for what may change)."""
    run = RunDir.open(path)
    old = build_config(run.read_config(), str(run.config_path))
    extra = overrides_to_dict(overrides)
    new = build_config(merge(old.to_dict(), extra), f"{run.config_path} + overrides") if extra else old
    checkpoint = run.checkpoint("last")
    if not checkpoint.is_file():
        raise CheckpointError(f"{run.path}: has no checkpoint yet (the run stopped before its first "
                              "epoch ended); start it again instead")
    state = load_checkpoint(checkpoint, "cpu")
    for folder in (run.path, checkpoint.parent):
        if not os.access(folder, os.W_OK):
            raise CheckpointError(f"{folder}: is not writable, and resuming writes the run's checkpoints, "
                                  "metrics.csv and train.log there; fix its permissions (or copy the run)")
    changes = changed_keys(old, new)
    check_changes(changes, state, str(run.path))
    # Not model.init_from or the pre-training again: the checkpoint has the weights (and the source
    # may be gone); pretrain.csv stays as the first start wrote it.
    experiment = build_experiment(new, trainer_options.get("callbacks", ()), pretrained=False)
    trainer = Trainer(new, run, experiment=experiment, **trainer_options)
    try:
        trainer.load_state_dict(state, str(checkpoint))  # architecture and classes checked here
    except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
        raise CheckpointError(f"{checkpoint}: its training state does not fit the run ({type(exc).__name__}: "
                              f"{str(exc)[:160]}); the file is damaged or from another program") from None
    # the run's other files read back later (the history here, layers.csv when training starts)
    # are checked now: a damaged one is refused before anything is written
    read_history(run.path / HISTORY_FILE)
    read_layers(run.path / LAYERS_FILE)
    if changes and trainer.group.main:  # DDP: rank 0 writes
        record(run, old, new, overrides, changes, state)
    note = f" with {', '.join(f'{k}={now!r}' for k, (_, now) in changes.items())}" if changes else ""
    trainer.say(f"resumed {run.path} after epoch {trainer.epoch} (step {trainer.step}){note}")
    return trainer
