"""Hyperparameter search on Optuna, the way seeds/002 teaches it: random search on log scales,
coarse to fine in stages, warnings for best values on the border of their range; many worker
processes on one machine (a journal file) or many machines (a PostgreSQL database).

:mod:`~cnnlab.search.spec` (the search file, torch-free) -> :mod:`~cnnlab.search.runner`
(the whole search: ``best.yaml``, ``summary.json``) over :mod:`~cnnlab.search.study` (stages as
Optuna studies, the worker loop), :mod:`~cnnlab.search.display` and :mod:`~cnnlab.search.workers`
(``--workers N``) -> :mod:`~cnnlab.search.trial` (one trial = one run directory);
:mod:`~cnnlab.search.engine` maps names onto Optuna's samplers, pruners and storages;
:mod:`~cnnlab.search.ranges` reads a finished stage (border warnings, narrowing).
"""

from cnnlab.lazy import lazy_exports

_EXPORTS = {"SearchSpec": "spec", "load_search": "spec", "run_search": "runner", "SearchResult": "runner"}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
