"""cnnlab: build, train, babysit and judge convolutional networks for image classification.

Data flows through the packages in this order::

    data  ->  models  ->  optim  ->  train  ->  report

See the README's "Architecture" section for the map.
"""

__version__ = "0.1.0"

import importlib

from cnnlab.lazy import lazy_exports

# The Python API (cnnlab.api); imported on first use so that `cnnlab --help` stays torch-free.
# ``cnnlab.train(...)`` is the package cnnlab.train, made callable (see its __init__).
_EXPORTS = {"load_run": "api", "Run": "api", "load_config": "config", "ExperimentConfig": "config"}
__all__ = ["train", *_EXPORTS]
_lazy_getattr, __dir__ = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    if name == "train":
        return importlib.import_module("cnnlab.train")
    return _lazy_getattr(name)
