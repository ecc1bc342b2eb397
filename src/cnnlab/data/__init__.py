"""Data: sources -> splits -> preprocessing fitted on train -> device loader.

Public interface::

    splits = load_data(cfg.data, seed)          # DatasetSplits with train/val/test
    preprocess = fit_preprocess(cfg.data, splits)
    loader = build_train_loader(cfg.data, splits.train.to(device), batch_size, preprocess)
    weight = loss_weights(cfg.data, splits)     # class weights for the loss, or None

Names are imported on first use (:mod:`cnnlab.lazy`), so reading a config does not import torch.
"""

from cnnlab.lazy import lazy_exports

__all__ = ["AUGMENTATIONS", "ArrayDataset", "Augment", "DataConfig", "DatasetSplits", "DeviceLoader",
           "PREPROCESSORS", "SOURCES", "build_augment", "build_train_loader", "fit_preprocess",
           "load_data", "load_source", "loss_weights", "make_preprocess"]
__getattr__, __dir__ = lazy_exports(__name__, dict.fromkeys(__all__, "pipeline"))
