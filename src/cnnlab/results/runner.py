"""``cnnlab results run``: train a row's recipes for its seeds, into fixed run directories.

Layout (one run directory per recipe and seed, so a rerun finds its work)::

    RESULTS_DIR/<recipe>/seed<k>/        a run directory (config.yaml, metrics.csv, test.json...)
    RESULTS_DIR/<recipe>/ensemble.json   `cnnlab ensemble` of the first N seeds, for rows that have one

A run with ``test.json`` is finished and skipped; one with a checkpoint is resumed (exactly,
see :mod:`cnnlab.train.resume`); one without a checkpoint (a start that failed) is started anew.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cnnlab.atomic import atomic_write
from cnnlab.errors import ConfigError
from cnnlab.results.rows import ROWS, TABLE, ResultRow

DEFAULT_DIR = "results"
ENSEMBLE_FILE = "ensemble.json"


@dataclass(frozen=True)
class Job:
    recipe: str
    seed: int

    def path(self, results_dir: str | Path) -> Path:
        return Path(results_dir) / self.recipe / f"seed{self.seed}"

    def state(self, results_dir: str | Path) -> str:
        """done | interrupted | new"""
        path = self.path(results_dir)
        if (path / "test.json").is_file():
            return "done"
        if (path / "checkpoints" / "last.pt").is_file():
            return "interrupted"
        return "new"


def select_rows(names: list[str], include: set[str] = frozenset({"cpu"})) -> list[ResultRow]:
    """Rows by key, or the rows whose recipes are named; no names: every row whose needs are in
    ``include``. Unknown names are a ConfigError listing the rows."""
    if not names:
        return [row for row in TABLE if row.needs in include]
    chosen = []
    for name in names:
        rows = [ROWS.get(name)] if name in ROWS else [r for r in TABLE if name in r.recipes]
        if not rows:
            from cnnlab.registry import did_you_mean

            known = ROWS.names() + sorted({r for row in TABLE for r in row.recipes})
            raise ConfigError(f"'{name}' is neither a results row nor one of their recipes.{did_you_mean(name, known)} "
                              f"Rows: {', '.join(ROWS.names())} (cnnlab results list)")
        chosen += [r for r in rows if r not in chosen]
    return chosen


def jobs_for(rows: list[ResultRow], seeds: list[int] | None = None, recipes: set[str] | None = None,
             include: set[str] | None = None) -> list[Job]:
    """(recipe, seed) pairs in table order; ``seeds`` replaces each row's own; ``recipes``
    limits a row to the named recipes (``results run lenet5-mnist-seed``); ``include`` to the
    recipes whose needs it holds (None: all)."""
    jobs: list[Job] = []
    for row in rows:
        for recipe, row_seeds in ((row.seed_recipe, row.seeds), (row.best_recipe, row.best_seeds)):
            if recipe is None or (recipes and recipe not in recipes and row.key not in recipes):
                continue
            if include is not None and row.needs_of(recipe) not in include:
                continue
            for seed in (seeds if seeds is not None else row_seeds):
                if Job(recipe, seed) not in jobs:
                    jobs.append(Job(recipe, seed))
    return jobs


def run_job(job: Job, results_dir: str | Path, *, progress: bool = True,
            echo: Callable[[str], None] = print, overrides: tuple[str, ...] = ()) -> dict:
    """Train (or resume) one recipe at one seed; returns its test.json. ``overrides`` go onto
    the recipe of a new run (tests use them to shrink the data)."""
    from cnnlab.config import load_config
    from cnnlab.train.resume import resume_run
    from cnnlab.train.trainer import start_run

    path = job.path(results_dir)
    state = job.state(results_dir)
    if state == "interrupted":
        trainer = resume_run(path, [], show_progress=progress, echo=echo)
    else:
        if path.exists():  # a start that failed before its first checkpoint: nothing to keep
            shutil.rmtree(path)
        cfg = load_config(job.recipe, [*overrides, f"seed={job.seed}"])
        trainer = start_run(cfg, run_dir=path, show_progress=progress, echo=echo)
    trainer.fit()
    return read_summary(path)


def read_summary(run_path: Path) -> dict:
    path = Path(run_path) / "test.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot be read as a finished run's summary ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("test_error"), (int, float)):
        raise ConfigError(f"{path}: not a finished run's summary (no test_error)")
    return data


def write_ensemble(row: ResultRow, results_dir: str | Path) -> dict | None:
    """The row's ensemble (mean softmax of the best recipe's first N seeds) into ensemble.json,
    once all N members are finished; None if some are not."""
    from cnnlab.train.ensemble import ensemble_runs

    if not row.ensemble or row.best_recipe is None:
        return None
    members = [Job(row.best_recipe, s) for s in range(row.ensemble)]
    if any(m.state(results_dir) != "done" for m in members):
        return None
    result = ensemble_runs([m.path(results_dir) for m in members], "mean")
    result["members"] = [{**m, "run_dir": Path(m["run_dir"]).name} for m in result["members"]]
    with atomic_write(Path(results_dir) / row.best_recipe / ENSEMBLE_FILE, "w") as f:
        json.dump(result, f, indent=2)
    return result
