"""Every dataset source, registered: the registry (:data:`cnnlab.data.sources.SOURCES`) imports
no source module; this one imports them all (registration runs one way), and is what callers
that look a source up by name use.
"""

from __future__ import annotations

import cnnlab.data.arrays  # noqa: F401  (npz, hdf5)
import cnnlab.data.cifar  # noqa: F401  (cifar10)
import cnnlab.data.folder  # noqa: F401  (folder)
import cnnlab.physics.dataset  # noqa: F401  (jets, jets-aligned, jets-aligned-norm)
from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import DatasetSplits
from cnnlab.data.sources import SOURCES  # mnist and idx register where the registry lives


def load_source(cfg: DataConfig) -> DatasetSplits:
    """The splits of ``data.source`` (train and test; validation is carved later)."""
    return SOURCES.get(cfg.source)(cfg)


__all__ = ["SOURCES", "load_source"]
