"""The search's side of Optuna: distributions, samplers, pruners and storages by name.

Optuna is the search engine (sampling, pruning, storage, heartbeats); this module only maps the
search file's words onto it.

* ``random``: :class:`TrialSeededRandomSampler`, Optuna's random sampler seeded per trial from
  (study seed, trial number, parameter), so trial k draws the same values however many workers
  share the study (Bergstra & Bengio 2012: random beats grid; seeds/002).
* ``tpe``: Optuna's TPE (Bergstra et al. 2011), seeded; with several workers its draws depend
  on which trials have finished, so they are not reproducible run to run.
* ``qmc``: scrambled Sobol points (Optuna's QMC sampler), evenly spread in the unit cube.
* ``grid``: every combination of ``grid_points`` values per numeric range (log-spaced for log
  ranges) and every choice; the stage ends when the grid is exhausted.
"""

from __future__ import annotations

import math
import warnings
import zlib
from typing import Any, Callable

import optuna
import yaml

from cnnlab.registry import Registry
from cnnlab.search.spec import Param, SearchSpec, yaml_text


def suggest(trial: optuna.trial.BaseTrial, p: Param) -> Any:
    """Ask Optuna for ``p``'s value; returns the config value. ``int_log2`` is sampled as its
    exponent (an integer), so every draw is a power of two and samplers see an ordered, evenly
    spaced dimension. A re-queued trial gets its fixed values back."""
    if p.kind in ("log_uniform", "uniform"):
        raw = trial.suggest_float(p.key, p.low, p.high, log=p.kind == "log_uniform")
    elif p.kind == "int":
        raw = trial.suggest_int(p.key, int(p.low), int(p.high))
    elif p.kind == "int_log2":
        raw = trial.suggest_int(p.key, int(math.log2(p.low)), int(math.log2(p.high)))
    else:
        raw = trial.suggest_categorical(p.key, _optuna_choices(p))
    return decode(p, raw)


def _optuna_choices(p: Param) -> list:
    return list(p.choices) if p.scalar_choices else [yaml_text(c) for c in p.choices]


def decode(p: Param, raw: Any) -> Any:
    """Optuna's value -> the config value."""
    if p.kind == "int_log2":
        return 2 ** int(raw)
    if p.kind == "choice" and not p.scalar_choices:
        return yaml.safe_load(raw)
    return raw


class TrialSeededRandomSampler(optuna.samplers.RandomSampler):
    """Random search whose draw for (trial number, parameter) depends on nothing else."""

    def __init__(self, seed: int = 0):
        super().__init__(seed=seed)
        self.seed = seed

    def sample_independent(self, study, trial, param_name, param_distribution):
        key = f"{self.seed}/{trial.number}/{param_name}".encode()
        own = optuna.samplers.RandomSampler(seed=zlib.crc32(key))
        return own.sample_independent(study, trial, param_name, param_distribution)


def _grid(spec: SearchSpec, params: list[Param]) -> dict[str, list]:
    space = {}
    for p in params:
        if not p.numeric:
            space[p.key] = _optuna_choices(p)
            continue
        n = spec.grid_points
        to, back = (math.log, math.exp) if p.log else (float, float)
        lo, hi = to(p.low), to(p.high)
        points = [back(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
        if p.kind == "int":
            points = sorted({round(x) for x in points})
        elif p.kind == "int_log2":
            points = sorted({round(math.log2(x)) for x in points})
        space[p.key] = points
    return space


SAMPLERS: Registry[Callable[[SearchSpec, list[Param], int], optuna.samplers.BaseSampler]] = Registry("sampler")
SAMPLERS.register("random")(lambda spec, params, seed: TrialSeededRandomSampler(seed))
SAMPLERS.register("tpe")(lambda spec, params, seed: optuna.samplers.TPESampler(seed=seed))
SAMPLERS.register("qmc")(lambda spec, params, seed: optuna.samplers.QMCSampler(
    qmc_type="sobol", scramble=True, seed=seed, warn_independent_sampling=False, warn_asynchronous_seeding=False))
SAMPLERS.register("grid")(lambda spec, params, seed: optuna.samplers.GridSampler(_grid(spec, params), seed=seed))

#: pruners decide at epoch ends only (the trial reports its metric once per epoch)
PRUNERS: Registry[Callable[[int], optuna.pruners.BasePruner]] = Registry("pruner")
PRUNERS.register("none")(lambda epochs: optuna.pruners.NopPruner())
PRUNERS.register("median")(lambda epochs: optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1))
PRUNERS.register("asha")(lambda epochs: optuna.pruners.SuccessiveHalvingPruner())
PRUNERS.register("hyperband")(lambda epochs: optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs)))


#: a worker's heartbeat (database storages): a worker silent for GRACE_FACTOR beats (killed, its
#: machine gone) has its running trial failed and re-queued with the same values by the next
#: worker that asks for a trial
HEARTBEAT_SECONDS = 10
GRACE_FACTOR = 3


def open_storage(url: str | None, study_dir, heartbeat: float = HEARTBEAT_SECONDS) -> optuna.storages.BaseStorage:
    """``None``: Optuna's journal file in the study directory (several processes on one machine,
    no server). A database URL (``postgresql+psycopg://user@host/db``): every machine that runs
    the same search joins the same study; a worker's heartbeat lets the others retry its trial."""
    import time

    from cnnlab.errors import ConfigError

    if url is None:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = str(study_dir / "study.journal")
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    beat = max(1, round(heartbeat))
    for attempt in range(3):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, heartbeat_interval=beat, grace_period=GRACE_FACTOR * beat,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=3),
                    engine_kwargs={"pool_pre_ping": True})
        except ModuleNotFoundError as exc:
            raise ConfigError(f"--storage {url}: the database driver is not installed ({exc}); for "
                              f"PostgreSQL: pip install 'cnnlab[postgres]'") from None
        except Exception as exc:  # sqlalchemy: bad URL, server down; or workers creating the tables at once
            if attempt == 2 or "connection" in str(exc).lower() or "could not parse" in str(exc).lower():
                raise ConfigError(f"--storage {url}: cannot open the study database ({type(exc).__name__}: "
                                  f"{str(exc).splitlines()[0]})") from None
            time.sleep(1.0)
