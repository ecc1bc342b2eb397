"""Running a search: stages one after another, trials spread over worker processes that share
one Optuna storage, a line per finished trial, border warnings, narrowing, ``best.yaml``.

Layout of a study directory::

    STUDY_DIR/search.yaml              the search as given (a re-run must match it)
    STUDY_DIR/study.journal            Optuna's journal storage (unless --storage URL)
    STUDY_DIR/stage1/trials/0000/      a normal run directory + trial.yaml
    STUDY_DIR/best.yaml                the best trial's complete config (`cnnlab train best.yaml`)
    STUDY_DIR/summary.json             every stage's trials, warnings and ranges

Each stage is its own Optuna study (``NAME.stage1``, ``NAME.stage2``...) on the same storage,
needing ``trials`` finished (complete or pruned) trials. Workers ask Optuna for trials until the
stage has them; one that asks for a trial the stage no longer needs (workers race for the last
ones) records it as a surplus failure and stops. A worker that dies mid-trial is noticed by
Optuna's heartbeat (database storages) or, on one machine, by its process id being gone; its
trial is failed and re-queued with the same values. Nothing is repeated on a re-run: the stage
counts what it already has.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from cnnlab.atomic import atomic_write
from cnnlab.errors import CnnlabError, UserError
from cnnlab.search.engine import HEARTBEAT_SECONDS, PRUNERS, SAMPLERS, open_storage
from cnnlab.search.ranges import border_warnings, narrow
from cnnlab.search.spec import Param, SearchSpec, check_against_config
from cnnlab.search.trial import SurplusTrial, TrialContext, run_trial, trial_seed

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
POLL_SECONDS = 1.0


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
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker") or {}
        if worker.get("host") != host or _alive(int(worker.get("pid", 0))):
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
def work(search: Search, stopping: Stopping, display: "Display | None" = None) -> bool:
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


# -- showing ---------------------------------------------------------------------------------
def short_names(keys: list[str]) -> dict[str, str]:
    """``optim.lr`` -> ``lr`` when the last part is unique among the keys, else the full key."""
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _format_value(value) -> str:
    return f"{value:e}" if isinstance(value, float) else str(value)


def trial_line(spec: SearchSpec, trial: FrozenTrial, done: int, needed: int) -> str:
    """The seed's line: ``val_acc: 0.412000, lr: 1.405206e-04, reg: 4.793564e-01, (1 / 100)``."""
    names = short_names(list(spec.space))
    values = trial.user_attrs.get("values", trial.params)
    shown = ", ".join(f"{names.get(k, k)}: {_format_value(v)}" for k, v in values.items())
    if trial.state == TrialState.COMPLETE:
        head = f"{spec.metric}: {trial.value:.6f}"
    else:
        head = f"{spec.metric}: {trial.user_attrs.get('reason', trial.state.name.lower())}"
    return f"{head}, {shown}, ({done} / {needed})  [trial {trial.number}]"


class Display:
    """Lines and a progress bar for the stages of one search (in the process that shows them)."""

    def __init__(self, search: Search, echo: Callable[[str], None], progress: bool):
        from tqdm.auto import tqdm

        self.search, self.echo, self.progress, self._tqdm = search, echo, progress, tqdm
        self.bar = None
        self.shown: set[int] = set()
        self.stage = -1
        self.summaries: list[dict] = []

    def start_stage(self, i: int, study: optuna.Study) -> None:
        if self.stage == i:
            return
        self.stage = i
        stage = self.search.spec.stages[i]
        params, notes = self.search.stage_params(i)
        self.say(f"stage {i + 1}/{len(self.search.spec.stages)}: {stage.trials} trials"
                 + (f" ({', '.join(stage.overrides)})" if stage.overrides else ""))
        for note in notes:
            self.say(f"  narrowed {note}")
        trials = finished(study.get_trials(deepcopy=False))
        self.shown = {t.number for t in trials}
        if trials:
            self.say(f"  {len(trials)} trials already finished (continuing the study)")
        if self.progress:
            self.bar = self._tqdm(total=stage.trials, initial=len(trials), desc=f"stage {i + 1}", unit="trial",
                                  leave=False, file=sys.stderr, dynamic_ncols=True)

    def say(self, line: str) -> None:
        if self.bar is not None:
            self.bar.clear()
        self.echo(line)
        if self.bar is not None:
            self.bar.refresh()

    def trial_finished(self, i: int, study: optuna.Study, trial: FrozenTrial) -> None:
        self.start_stage(i, study)
        if trial.number in self.shown or trial.state not in FINISHED:
            return
        self.shown.add(trial.number)
        needed = self.search.spec.stages[i].trials
        self.say(trial_line(self.search.spec, trial, len(self.shown), needed))
        if self.bar is not None:
            self.bar.update(1)
            best = ranked_trials(study, self.search.spec.maximize)
            if best:
                self.bar.set_postfix_str(f"best {self.search.spec.metric} {best[0].value:.4f}")

    def poll(self, i: int, study: optuna.Study) -> None:
        self.start_stage(i, study)
        for t in sorted(finished(study.get_trials(deepcopy=False)), key=lambda t: t.datetime_complete):
            self.trial_finished(i, study, t)

    def stage_end(self, i: int, study: optuna.Study, params: list[Param]) -> None:
        self.poll(i, study)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        spec = self.search.spec
        ranked = ranked_trials(study, spec.maximize)
        warnings = border_warnings(params, [t.user_attrs.get("values", t.params) for t in ranked])
        if ranked:
            self.say(f"stage {i + 1} best: {trial_line(spec, ranked[0], len(finished(study.trials)), spec.stages[i].trials)}")
        for w in warnings:
            self.say(w.message())
        self.summaries.append({
            "stage": i + 1, "study": study.study_name, "space": {p.key: p.to_data() for p in params},
            "warnings": [w.message() for w in warnings],
            "trials": [trial_record(t) for t in sorted(counted(study.trials), key=lambda t: t.number)]})


def trial_record(t: FrozenTrial) -> dict:
    return {"number": t.number, "state": t.state.name.lower(), "value": t.value,
            "values": t.user_attrs.get("values", t.params), "run_dir": t.user_attrs.get("run_dir"),
            "reason": t.user_attrs.get("reason"), "test_error": t.user_attrs.get("test_error")}


# -- the whole search ------------------------------------------------------------------------
@dataclass
class SearchResult:
    dir: Path
    completed: bool
    stages: list[dict]
    best: dict | None

    def to_dict(self) -> dict:
        return {"study_dir": str(self.dir), "completed": self.completed, "best": self.best, "stages": self.stages}


def _check_same_search(search: Search) -> None:
    """A study directory belongs to one search: a re-run continues it only with the same file."""
    record = search.dir / "search.yaml"
    data = {"study": search.name, **search.spec.model_dump(exclude={"origin"}, mode="json")}
    if record.is_file():
        before = yaml.safe_load(record.read_text(encoding="utf-8")) or {}
        if before != data:
            changed = sorted(k for k in set(before) | set(data) if before.get(k) != data.get(k))
            raise UserError(f"{record}: this study directory holds another search (differs in: "
                            f"{', '.join(changed)}); re-run the same search to continue it, or give "
                            f"--study NAME (or --dir) for a new one")
        return
    search.dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(record, "w") as f:
        f.write(yaml.safe_dump(data, sort_keys=False))


def write_best(search: Search, study: optuna.Study) -> dict | None:
    ranked = ranked_trials(study, search.spec.maximize)
    if not ranked:
        return None
    best = ranked[0]
    run_dir = best.user_attrs["run_dir"]  # perhaps on another machine: the config is in the study
    config = best.user_attrs.get("config") or yaml.safe_load((Path(run_dir) / "config.yaml").read_text(encoding="utf-8"))
    config = {**config, "name": f"{search.name}-best"}
    header = (f"# best trial of search '{search.name}': stage {len(search.spec.stages)}, trial {best.number} "
              f"({run_dir}), {search.spec.metric} {best.value:.6f}\n# re-run it: cnnlab train {search.dir / 'best.yaml'}\n")
    with atomic_write(search.dir / "best.yaml", "w") as f:
        f.write(header + yaml.safe_dump({"base": "none", **config}, sort_keys=False))
    return {**trial_record(best), "config": str(search.dir / "best.yaml")}


def top_table(spec: SearchSpec, study: optuna.Study, k: int = 10) -> list[str]:
    ranked = ranked_trials(study, spec.maximize)[:k]
    if not ranked:
        return []
    names = short_names(list(spec.space))
    header = ["rank", "trial", spec.metric, *(names[key] for key in spec.space)]
    rows = [[str(r + 1), str(t.number), f"{t.value:.6f}",
             *(_format_value(t.user_attrs.get("values", {}).get(key, "")) for key in spec.space)]
            for r, t in enumerate(ranked)]
    widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
    return ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in [header, *rows]]


def run_search(spec: SearchSpec, study_dir: Path, name: str, storage: str | None = None, workers: int = 1,
               echo: Callable[[str], None] = print, progress: bool = True,
               heartbeat: float = HEARTBEAT_SECONDS) -> SearchResult:
    """Run (or continue) the search; returns when every stage has its trials or on Ctrl-C."""
    check_against_config(spec)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if heartbeat <= 0:
        raise UserError(f"--heartbeat must be positive, got {heartbeat}")
    search = Search(spec, name, Path(study_dir), storage, heartbeat)
    if storage is not None:
        search.storage  # noqa: B018  (a database that cannot be opened fails before STUDY_DIR is made)
    _check_same_search(search)
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # our lines say what happened
    display = Display(search, echo, progress)
    stopping = Stopping(display.say)
    previous = signal.getsignal(signal.SIGINT)
    stopping.install()
    try:
        if workers == 1:
            completed = work(search, stopping, display)
        else:
            completed = _supervise(search, workers, stopping, display)
    finally:
        signal.signal(signal.SIGINT, previous)
        if display.bar is not None:
            display.bar.close()
    last = search.study(len(spec.stages) - 1, search.stage_params(len(spec.stages) - 1)[0]) if completed else None
    best = write_best(search, last) if last is not None else None
    if last is not None:
        echo(f"top trials of stage {len(spec.stages)}:")
        for line in top_table(spec, last):
            echo("  " + line)
        if best:
            echo(f"best config: {best['config']} (cnnlab train {best['config']})")
    result = SearchResult(search.dir, completed, display.summaries, best)
    with atomic_write(search.dir / "summary.json", "w") as f:
        json.dump(result.to_dict(), f, indent=2, default=str)
    if not completed:
        echo(f"stopped; re-run the same command to continue the study in {search.dir}")
    return result


# -- several worker processes ----------------------------------------------------------------
def worker_threads(workers: int) -> int:
    """Torch threads per worker: the cores shared out (oversubscribed threads make every trial
    many times slower)."""
    return max(1, (os.cpu_count() or 1) // workers)


def _supervise(search: Search, workers: int, stopping: Stopping, display: Display) -> bool:
    """Start ``workers`` processes (each its own session, so Ctrl-C reaches them once, from
    here), show their trials as they finish, and stop them on Ctrl-C."""
    threads = worker_threads(workers)
    job = json.dumps({"spec": search.spec.model_dump(mode="json"), "name": search.name,
                      "dir": str(search.dir), "storage": search.storage_url, "threads": threads,
                      "heartbeat": search.heartbeat})
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    logs = search.dir / "workers"
    logs.mkdir(exist_ok=True)
    procs = []
    for n in range(workers):  # stderr to a file: a pipe nobody reads would block the worker
        with open(logs / f"{socket.gethostname()}-{n}.log", "ab") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "cnnlab.search.worker", job], env=env,
                                          stdout=subprocess.DEVNULL, stderr=log, start_new_session=True))
    forwarded = False
    try:
        for i in range(len(search.spec.stages)):
            while True:
                params, _ = search.stage_params(i) if _stage_ready(search, i) else (None, None)
                if params is not None:
                    study = search.study(i, params)
                    display.poll(i, study)
                    if stage_status(study, search.spec.stages[i].trials)["done"]:
                        display.stage_end(i, study, params)
                        break
                if stopping.requested and not forwarded:
                    for p in procs:
                        p.send_signal(signal.SIGINT)
                    forwarded = True
                if all(p.poll() is not None for p in procs):
                    if stopping.requested:
                        return False
                    return _workers_gone(search, procs)
                time.sleep(POLL_SECONDS)
        return all(p.wait() == 0 for p in procs) or _workers_gone(search, procs)
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGINT)
        raise
    finally:
        for p in procs:
            try:
                p.wait(timeout=60 if stopping.requested else 5)
            except subprocess.TimeoutExpired:
                p.kill()


def _stage_ready(search: Search, i: int) -> bool:
    """Stage ``i``'s space is known: it does not narrow, or its previous stage is done."""
    if i == 0 or not search.spec.stages[i].narrow:
        return True
    prev, _ = search.stage_params(i - 1)
    return stage_status(search.study(i - 1, prev), search.spec.stages[i - 1].trials)["done"]


def _workers_gone(search: Search, procs: list[subprocess.Popen]) -> bool:
    codes = [p.returncode for p in procs]
    if all(c == 0 for c in codes):
        return True
    logs = sorted((search.dir / "workers").glob("*.log"))
    tail = logs[-1].read_text(errors="replace").strip().splitlines()[-5:] if logs else []
    raise CnnlabError(f"every search worker exited (exit codes {codes}) before the search finished; "
                      f"their logs are in {search.dir / 'workers'}:\n" + "\n".join(tail))
