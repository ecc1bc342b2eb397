"""Running a search: stages one after another, trials spread over worker processes that share
one Optuna storage, a line per finished trial, border warnings, narrowing, ``best.yaml``.

Layout of a study directory::

    STUDY_DIR/search.yaml              the search as given (a re-run must match it)
    STUDY_DIR/study.journal            Optuna's journal storage (unless --storage URL)
    STUDY_DIR/stage1/trials/0000/      a normal run directory + trial.yaml
    STUDY_DIR/best.yaml                the best trial's complete config (`cnnlab train best.yaml`)
    STUDY_DIR/summary.json             every stage's trials, warnings and ranges

The pieces: :mod:`~cnnlab.search.study` (stages as Optuna studies, the worker loop),
:mod:`~cnnlab.search.display` (lines, progress bar, tables), :mod:`~cnnlab.search.workers`
(``--workers N`` processes).
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
import yaml

from cnnlab.atomic import atomic_write
from cnnlab.errors import UserError
from cnnlab.search.display import Display, top_table, trial_record
from cnnlab.search.engine import HEARTBEAT_SECONDS
from cnnlab.search.spec import SearchSpec, check_against_config
from cnnlab.search.study import Search, Stopping, ranked_trials, work
from cnnlab.search.workers import supervise

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
            completed = supervise(search, workers, stopping, display)
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
