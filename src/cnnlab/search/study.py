"""A search's studies: one Optuna study per stage on a shared storage, and the worker loop.

Each stage is its own Optuna study (``NAME.stage1``, ``NAME.stage2``...) on the same storage,
needing ``trials`` finished (complete or pruned) trials. Workers ask Optuna for trials until the
stage has them; one that asks for a trial the stage no longer needs (workers race for the last
ones) records it as a surplus failure and stops. A worker that dies mid-trial is noticed by
Optuna's heartbeat (database storages) or, on one machine, by its process id being gone; its
trial is failed and re-queued with the same values. Nothing is repeated on a re-run: the stage
counts what it already has.
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import optuna
from optuna.trial import FrozenTrial, TrialState

from cnnlab.search.engine import HEARTBEAT_SECONDS, PRUNERS, SAMPLERS, open_storage
from cnnlab.search.ranges import border_warnings, narrow
from cnnlab.search.spec import Param, SearchSpec
from cnnlab.search.trial import SurplusTrial, TrialContext, run_trial, trial_seed

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = 1.0
#: a running trial whose worker never recorded itself (killed between Optuna's ask and the
#: trial's first line) is presumed dead after this long
UNCLAIMED_SECONDS = 30.0


class Stopping:
    """Ctrl-C once: finish the running trial, then stop; twice: abort it (it is re-queued)."""

    def __init__(self, echo: Callable[[str], None]):
        self.requested = False
        self.echo = echo

    def __call__(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        self.echo("stopping after the running trial (Ctrl-C again to abort it; it will be re-queued)")

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)


@dataclass
class Search:
    spec: SearchSpec
    name: str
    dir: Path
    storage_url: str | None = None
    heartbeat: float = HEARTBEAT_SECONDS
    _storage: optuna.storages.BaseStorage | None = field(default=None, repr=False)

    @property
    def storage(self) -> optuna.storages.BaseStorage:
        if self._storage is None:
            self._storage = open_storage(self.storage_url, self.dir, self.heartbeat)
        return self._storage

    def study_name(self, i: int) -> str:
        return f"{self.name}.stage{i + 1}"

    def trials_dir(self, i: int) -> Path:
        return self.dir / f"stage{i + 1}" / "trials"

    def study(self, i: int, params: list[Param] | None = None) -> optuna.Study:
        seed = trial_seed(self.spec.seed, i, -1)
        sampler = SAMPLERS.get(self.spec.sampler)(self.spec, params or self.spec.params, seed)
        epochs = _stage_epochs(self.spec, i)
        return optuna.create_study(
            storage=self.storage, study_name=self.study_name(i), sampler=sampler, load_if_exists=True,
            pruner=PRUNERS.get(self.spec.pruner)(epochs),
            direction="maximize" if self.spec.maximize else "minimize")

    # -- what a stage searches ------------------------------------------------------------
    def stage_params(self, i: int) -> tuple[list[Param], list[str]]:
        """The space of stage ``i`` and notes on how it was narrowed. A narrowed space is
        computed once from the finished previous stage and stored with the stage's study, so
        every worker (and a later re-run) searches the same ranges."""
        if not self.spec.stages[i].narrow:
            return self.spec.stage_params(i), []
        study = self.study(i)
        if "space" in study.user_attrs:
            stored = study.user_attrs["space"]
            return [Param(**p) for p in stored["params"]], stored["notes"]
        prev_params, _ = self.stage_params(i - 1)
        ranked = ranked_values(self.study(i - 1, prev_params), self.spec.maximize)
        warnings = border_warnings(prev_params, ranked)
        narrowed = narrow(prev_params, ranked, self.spec.stages[i].narrow, warnings)
        params, notes = [n.param for n in narrowed], [n.note for n in narrowed]
        study.set_user_attr("space", {"params": [p.model_dump() for p in params], "notes": notes})
        return params, notes

    def context(self, i: int, params: list[Param]) -> TrialContext:
        return TrialContext(self.spec, self.spec.stages[i], i, params, self.trials_dir(i), self.name)


def _stage_epochs(spec: SearchSpec, i: int) -> int:
    from cnnlab.config import load_config
    from cnnlab.search.spec import base_source

    return load_config(base_source(spec), [*spec.overrides, *spec.stages[i].overrides]).train.epochs


# -- reading a study -------------------------------------------------------------------------
def counted(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if not t.user_attrs.get("surplus")]


def finished(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in counted(trials) if t.state in FINISHED]


def ranked_trials(study: optuna.Study, maximize: bool) -> list[FrozenTrial]:
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.value is not None]
    return sorted(done, key=lambda t: -t.value if maximize else t.value)


def ranked_values(study: optuna.Study, maximize: bool) -> list[dict]:
    return [t.user_attrs.get("values", t.params) for t in ranked_trials(study, maximize)]


def _exhausted(study: optuna.Study) -> bool:
    sampler = study.sampler
    return isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study)


def stage_status(study: optuna.Study, needed: int) -> dict:
    trials = counted(study.get_trials(deepcopy=False))
    status = {"finished": len(finished(trials)),
              "running": sum(t.state == TrialState.RUNNING for t in trials),
              "waiting": sum(t.state == TrialState.WAITING for t in trials)}
    status["done"] = status["finished"] >= needed or (_exhausted(study) and not status["running"] and not status["waiting"])
    return status


def fail_dead_trials(study: optuna.Study) -> list[int]:
    """Running trials whose worker is gone, failed and re-queued with the same values. Database
    storages: Optuna's heartbeat (a worker silent for its grace period). A journal file has no
    heartbeat, and all its workers share this machine: a worker whose process id is gone.
    Returns the numbers failed here by process id."""
    if not isinstance(study._storage, optuna.storages.JournalStorage):
        with warnings.catch_warnings():  # experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        return []
    host, dead = socket.gethostname(), []
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if worker is None:  # asked for, but its worker died before saying who it is (milliseconds)
            started = t.datetime_start or now
            if (now - started).total_seconds() < UNCLAIMED_SECONDS:
                continue
        elif worker.get("host") != host or _alive(int(worker.get("pid", 0))):
            continue
        try:
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except (RuntimeError, optuna.exceptions.UpdateFinishedTrialError):
            continue  # another worker got there first
        study.enqueue_trial(dict(t.params), user_attrs={"retry_of": t.number})
        dead.append(t.number)
    return dead


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # unknown: leave it to the heartbeat
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


# -- working ---------------------------------------------------------------------------------
class StageObserver(Protocol):
    """What :func:`work` tells the one who shows the search (:class:`cnnlab.search.display.Display`)."""

    def start_stage(self, i: int, study: optuna.Study) -> None: ...
    def trial_finished(self, i: int, study: optuna.Study, trial: FrozenTrial) -> None: ...
    def stage_end(self, i: int, study: optuna.Study, params: list[Param]) -> None: ...


def work(search: Search, stopping: Stopping, display: StageObserver | None = None) -> bool:
    """Run trials of every stage until each has its count. Returns False when stopped early."""
    on_trial = display.trial_finished if display is not None else None
    for i, stage in enumerate(search.spec.stages):
        params, _ = search.stage_params(i)
        study = search.study(i, params)
        ctx = search.context(i, params)
        if display is not None:
            display.start_stage(i, study)

        def stopper(study_, trial, needed=stage.trials):
            if on_trial is not None and not trial.user_attrs.get("surplus"):
                on_trial(i, study_, trial)
            if stopping.requested or stage_status(study_, needed)["done"]:
                study_.stop()

        while True:
            if stopping.requested:
                return False
            fail_dead_trials(study)
            status = stage_status(study, stage.trials)
            if status["done"]:
                break
            if status["waiting"] or status["finished"] + status["running"] < stage.trials:
                study.optimize(lambda trial: run_trial(trial, ctx), callbacks=[stopper],
                               catch=(SurplusTrial,), gc_after_trial=False)
            else:
                time.sleep(POLL_SECONDS)  # the last trials run elsewhere
        if display is not None:
            display.stage_end(i, study, params)
    return True
