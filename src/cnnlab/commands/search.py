"""Search hyperparameters with Optuna, as seeds/002 teaches: random search on log scales, coarse
to fine in stages, and a warning when a best value lies on the border of its range.

SEARCH.yaml names a base experiment (recipe or config file), a space over dotted config keys and
stages; KEY=VALUE pairs are added to every trial's overrides:

  base: twolayer-cifar10
  metric: val_acc                 # direction from the name (acc/auc: maximize)
  sampler: random                 # random | tpe | qmc | grid
  pruner: none                    # none | median | asha | hyperband (at epoch ends)
  space:
    optim.lr: {log_uniform: [1.0e-6, 1.0e-3]}
    optim.l2: {log_uniform: [1.0e-5, 1.0e+5]}
    train.batch_size: {choice: [64, 128, 256]}   # also: uniform, int, int_log2
  stages:
    - {trials: 100, train.epochs: 5}               # coarse
    - {trials: 100, train.epochs: 20, narrow: 10}  # fine: the top 10's ranges, widened x2

Every trial is a run directory STUDY_DIR/stageS/trials/NNNN/ (evaluate, report, --resume work on
it). STUDY_DIR (default runs/search-NAME) keeps the journal storage; re-running the same command
continues the study. --workers N runs N processes here, each with cores/N torch threads;
--storage postgresql+psycopg://USER@HOST/DB lets every machine running the same command join the
same study. Ctrl-C stops after the running trial (twice: aborts it; it is re-queued). At the end:
the top trials and STUDY_DIR/best.yaml, a complete config for `cnnlab train`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cnnlab.cli import emit_json
from cnnlab.errors import ConfigError

NAME = "search"
HELP = "hyperparameter search with Optuna (random, log scale, coarse to fine, many workers)"


def add_arguments(p) -> None:
    p.add_argument("config", nargs="+", metavar="SEARCH.yaml|KEY=VALUE",
                   help="a search file, then KEY=VALUE overrides for every trial")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--storage", help="Optuna storage URL shared by many machines, e.g. "
                                     "postgresql+psycopg://user@host/db (default: a journal file in STUDY_DIR)")
    p.add_argument("--study", help="study name (default: the search file's name)")
    p.add_argument("--dir", help="study directory (default: <runs_dir>/search-<study>)")
    p.add_argument("--sampler", choices=["random", "tpe", "qmc", "grid"], help="override the file's sampler")
    p.add_argument("--seed", type=int, help="override the file's study seed")
    p.add_argument("--heartbeat", type=float, default=10, metavar="SECONDS",
                   help="database storages: how often a worker says it is alive; a worker silent for 3x "
                        "this is presumed dead and its trial re-queued (default 10)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout (lines go to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    from cnnlab.config import load_config
    from cnnlab.search.runner import run_search
    from cnnlab.search.spec import base_source, load_search

    source, *overrides = args.config
    if "=" in source:
        raise ConfigError(f"'{source}': the first argument is the search file (SEARCH.yaml), then KEY=VALUE")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"'{bad[0]}': only the first argument may be a search file; the rest must be KEY=VALUE")
    spec = load_search(source, overrides)
    if args.sampler:
        spec.sampler = args.sampler
    if args.seed is not None:
        spec.seed = args.seed
    name = args.study or Path(source).stem
    if not name or name.startswith(".") or not all(c.isalnum() or c in "._-+" for c in name):
        raise ConfigError(f"--study {name!r}: a study name is letters, digits and . _ - +")
    runs_dir = load_config(base_source(spec), spec.overrides).runs_dir
    study_dir = Path(args.dir) if args.dir else Path(runs_dir) / f"search-{name}"
    echo = (lambda line: print(line, file=sys.stderr)) if args.json else print
    result = run_search(spec, study_dir, name, storage=args.storage, workers=args.workers, echo=echo,
                        progress=not args.quiet, heartbeat=args.heartbeat)
    if args.json:
        emit_json(result.to_dict())
    return 0 if result.completed else 130
