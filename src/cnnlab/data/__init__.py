"""Data: sources -> splits -> preprocessing fitted on train -> device loader.

Public interface::

    splits = load_data(cfg.data, seed)          # DatasetSplits with train/val/test
    preprocess = fit_preprocess(cfg.data, splits)
    loader = DeviceLoader(splits.train.to(device), batch_size, shuffle=True, preprocess=...)
"""

from __future__ import annotations

from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits, split_validation
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.preprocess import build_preprocess
from cnnlab.data.sources import SOURCES, load_source


def load_data(cfg: DataConfig, seed: int = 0) -> DatasetSplits:
    """Load a source and carve the validation split out of train."""
    return split_validation(load_source(cfg), cfg.val_size, seed)


def make_preprocess(cfg: DataConfig, channels: int):
    """The (unfitted) preprocessing pipeline; load a run's fitted state into it."""
    return build_preprocess(cfg.normalize, channels)


def fit_preprocess(cfg: DataConfig, splits: DatasetSplits):
    """Build the preprocessing pipeline and fit it on the training split only."""
    return make_preprocess(cfg, splits.input_shape[0]).fit(splits.train.images)


__all__ = ["ArrayDataset", "DataConfig", "DatasetSplits", "DeviceLoader", "SOURCES",
           "fit_preprocess", "load_data", "make_preprocess", "load_source"]
