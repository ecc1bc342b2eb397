"""The data pipeline behind :mod:`cnnlab.data`'s public interface: source -> splits ->
preprocessing fitted on train -> training loader (see the package docstring)."""

from __future__ import annotations

import torch

from cnnlab.data.augment import AUGMENTATIONS, Augment, build_augment, expand_one_pixel_shifts
from cnnlab.data.balance import class_weights, sample_weights
from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits, split_validation
from cnnlab.data.loader import DeviceLoader
from cnnlab.data.normalize import PREPROCESSORS, build_preprocess
from cnnlab.data.catalog import SOURCES, load_source
from cnnlab.errors import DataError


def load_data(cfg: DataConfig, seed: int = 0) -> DatasetSplits:
    """Load a source, carve the validation split out of train, keep the first ``train_size``
    training examples, expand train if asked."""
    splits = split_validation(load_source(cfg), cfg.val_size, seed)
    if cfg.train_size is not None:
        n = len(splits.train)
        if cfg.train_size > n:
            raise DataError(f"data.train_size={cfg.train_size} is more than the {n} training examples "
                            f"left after data.val_size={cfg.val_size}")
        splits.train = splits.train.subset(torch.arange(cfg.train_size))
    if cfg.expand_shifts:
        if cfg.loader == "stream":
            raise DataError("data.expand_shifts copies the training images in memory; it cannot be "
                            "combined with data.loader=stream (use the one_pixel_shift augmentation)")
        splits.train = ArrayDataset(*expand_one_pixel_shifts(splits.train.images, splits.train.labels))
    return splits


def make_preprocess(cfg: DataConfig, channels: int | None = None):
    """The (unfitted) preprocessing pipeline; load a run's fitted state into it."""
    return build_preprocess(cfg.normalize, channels)


def fit_preprocess(cfg: DataConfig, splits: DatasetSplits):
    """Build the preprocessing pipeline and fit it on the training split only; a DataError if
    what it makes of the first training images is not finite (values that overflow float32:
    the loss would be NaN at the first step, whatever the learning rate)."""
    preprocess = make_preprocess(cfg, splits.input_shape[0]).fit(splits.train.images)
    sample = splits.train.images[:256]
    with torch.no_grad():
        out = preprocess(sample)
    if not bool(torch.isfinite(out).all()):
        peak = float(sample.double().abs().max())
        raise DataError(f"data.normalize: the training images are not finite after preprocessing "
                        f"({cfg.normalize}); their values reach {peak:.3g}, which overflows float32 "
                        "arithmetic: rescale the data (e.g. to 0..1) before training")
    return preprocess


def build_train_loader(cfg: DataConfig, data: ArrayDataset, batch_size: int, preprocess,
                       num_classes: int | None = None):
    """The training loader: shuffled (or class-balanced), with ``data.augment``."""
    weights = None
    if cfg.balance == "sample":
        weights = sample_weights(data.labels, num_classes or int(data.labels.max()) + 1)
    augment = build_augment(cfg.augment) or None
    if cfg.loader == "stream":
        from cnnlab.data.stream import StreamingLoader

        return StreamingLoader(data, batch_size, shuffle=True, preprocess=preprocess, augment=augment,
                               sample_weights=weights, workers=cfg.workers)
    return DeviceLoader(data, batch_size, shuffle=True, preprocess=preprocess, augment=augment,
                        sample_weights=weights)


def loss_weights(cfg: DataConfig, splits: DatasetSplits, device=None) -> torch.Tensor | None:
    """Class weights for the cross-entropy when ``data.balance: weight``, else None."""
    if cfg.balance != "weight":
        return None
    return class_weights(splits.train.labels, splits.num_classes, splits.classes).to(device)
