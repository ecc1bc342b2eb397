"""One trial: sampled values -> a config -> a normal cnnlab run directory -> the metric.

The trial's config is the base with the search's overrides, the stage's and the sampled ones
merged at once (:func:`cnnlab.config.load_config`: each changes its own key only), its seed
derived from (study seed, stage, trial number). The metric is reported to Optuna after every
epoch so a pruner can stop the trial at an epoch end; the run directory gets ``trial.yaml``
(stage, number, state, values, metric) beside the usual config, metrics and checkpoints, so
``evaluate``, ``report`` and ``--resume`` work on it.
"""

from __future__ import annotations

import os
import socket
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from cnnlab.atomic import atomic_write
from cnnlab.search.engine import suggest
from cnnlab.search.spec import Param, SearchSpec, Stage, base_source, override
from cnnlab.train.callbacks import Callback


class SurplusTrial(Exception):
    """Workers asked for more trials than the stage needs (they raced for the last ones)."""


def trial_seed(study_seed: int, stage: int, number: int) -> int:
    """A trial's ``seed``: a pure function of (study seed, stage, trial number)."""
    return zlib.crc32(f"{study_seed}/{stage}/{number}".encode()) % (2 ** 31)


class ReportToTrial(Callback):
    """Hands each epoch's metric to Optuna; stops training when the pruner says so."""

    name = "search"

    def __init__(self, trial: optuna.Trial, metric: str):
        self.trial, self.metric = trial, metric
        self.pruned_at: int | None = None

    def on_epoch_end(self, trainer, row: dict) -> bool:
        value = row.get(self.metric)
        if value is None:
            from cnnlab.errors import ConfigError

            raise ConfigError(f"metric '{self.metric}' is not in this run's metrics "
                              f"(columns: {', '.join(k for k, v in row.items() if v is not None)})")
        self.trial.report(float(value), step=int(row["epoch"]))
        if self.trial.should_prune():
            self.pruned_at = int(row["epoch"])
            return True
        return False


@dataclass
class TrialContext:
    """What every trial of one stage shares."""

    spec: SearchSpec
    stage: Stage
    stage_index: int  # 0-based
    params: list[Param]
    trials_dir: Path
    study_name: str

    def needed(self) -> int:
        return self.stage.trials


def best_of(rows: list[dict], metric: str, maximize: bool) -> float | None:
    values = [float(r[metric]) for r in rows if r.get(metric) is not None]
    if not values:
        return None
    return max(values) if maximize else min(values)


def is_surplus(study: optuna.Study, trial: optuna.Trial, needed: int) -> bool:
    """True when ``needed`` other trials already are, or will be, finished: trials numbered
    below this one that did not fail, plus re-queued ones (retries of failed trials)."""
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    others = study.get_trials(deepcopy=False)
    own = next(t for t in others if t.number == trial.number)
    with warnings.catch_warnings():  # experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(own)
    if "retry_of" in own.user_attrs or retried is not None:
        return False  # a re-queued trial replaces a failed one
    ahead = sum(1 for t in others if t.number < trial.number and t.state != TrialState.FAIL)
    queued = sum(1 for t in others if t.number > trial.number and t.state == TrialState.WAITING)
    return ahead + queued >= needed


def run_trial(trial: optuna.Trial, ctx: TrialContext) -> float:
    """The objective: train one configuration, return its best ``metric`` over the epochs."""
    from cnnlab.config import load_config
    from cnnlab.errors import TrainingDiverged
    from cnnlab.train.trainer import start_run

    if is_surplus(trial.study, trial, ctx.needed()):
        trial.set_user_attr("surplus", True)
        trial.study.stop()
        raise SurplusTrial(f"trial {trial.number}: the stage already has its trials")
    trial.set_user_attr("worker", {"host": socket.gethostname(), "pid": os.getpid()})
    values = {p.key: suggest(trial, p) for p in ctx.params}
    spec = ctx.spec
    seed = trial_seed(spec.seed, ctx.stage_index, trial.number)
    run_dir = ctx.trials_dir / f"{trial.number:04d}"
    trial.set_user_attr("values", values)
    trial.set_user_attr("run_dir", str(run_dir))
    cfg = load_config(base_source(spec), [*spec.overrides, *ctx.stage.overrides,
                                          *(override(k, v) for k, v in values.items()),
                                          f"seed={seed}", f"name={ctx.study_name}-{trial.number:04d}"])
    trial.set_user_attr("config", cfg.to_dict())
    record = {"study": ctx.study_name, "stage": ctx.stage_index + 1, "number": trial.number,
              "seed": seed, "values": values, "metric": spec.metric, "state": "running"}
    reporter = ReportToTrial(trial, spec.metric)
    try:
        trainer = start_run(cfg, run_dir=run_dir, show_progress=False, echo=lambda line: None,
                            callbacks=[reporter])
        write_record(run_dir, record)
        result = trainer.fit()
    except TrainingDiverged as exc:
        # a diverging configuration is a result of the search, not a failure to retry
        write_record(run_dir, {**record, "state": "pruned", "reason": f"diverged: {exc}"})
        trial.set_user_attr("reason", "diverged")
        raise optuna.TrialPruned(str(exc)) from None
    except KeyboardInterrupt:
        write_record(run_dir, {**record, "state": "failed", "reason": "interrupted (Ctrl-C); re-queued"})
        trial.study.enqueue_trial(dict(trial.params), user_attrs={"retry_of": trial.number})
        raise
    value = best_of(result.metrics, spec.metric, spec.maximize)
    trial.set_user_attr("test_error", result.test_error)
    if reporter.pruned_at is not None:
        write_record(run_dir, {**record, "state": "pruned", "reason": f"pruned after epoch {reporter.pruned_at}",
                               "value": value, "test_error": result.test_error})
        trial.set_user_attr("reason", f"pruned after epoch {reporter.pruned_at}")
        raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_at}")
    write_record(run_dir, {**record, "state": "complete", "value": value, "test_error": result.test_error})
    return value


def write_record(run_dir: Path, record: dict[str, Any]) -> None:
    with atomic_write(run_dir / "trial.yaml", "w") as f:
        f.write(yaml.safe_dump(record, sort_keys=False))
