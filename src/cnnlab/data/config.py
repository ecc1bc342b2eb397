"""The ``data:`` section of an experiment config."""

from __future__ import annotations

from typing import Any, Callable, Literal

from pydantic import Field, field_validator, model_validator

from cnnlab.configbase import Section
from cnnlab.data.stepconfig import validate_steps
from cnnlab.registry import Registry

StepList = str | list[str | dict[str, Any]]

#: Checks of the ``data:`` keys that belong to sources another package provides, by key:
#: ``check(value)`` raises ValueError. That package registers them (:mod:`cnnlab.physics.config`
#: registers ``jet_prep``) and :mod:`cnnlab.config` imports it, so the data package imports no
#: package built on it.
SOURCE_KEY_CHECKS: Registry[Callable[[Any], None]] = Registry("data key check")


class DataConfig(Section):
    """Where the images come from, how they are preprocessed, augmented and batched.

    ``source`` names an entry of :data:`cnnlab.data.sources.SOURCES` (``mnist``, ``idx``,
    ``cifar10``, ``folder``, ``npz``, ``hdf5``). ``normalize`` and ``augment`` are pipelines of
    named steps (:mod:`cnnlab.data.steps`); both are checked when the config is read, against
    :mod:`cnnlab.data.stepconfig` (no torch). ``jet_prep`` belongs to the jets sources and is
    checked by the physics package (:data:`SOURCE_KEY_CHECKS`).
    """

    source: str = Field("mnist", description="dataset source name (see `cnnlab list sources`)")
    path: str | None = Field(None, description="folder or file of the dataset; None = default location")
    val_size: int = Field(10_000, ge=0, description="examples carved from train for validation")
    download: bool = Field(True, description="download missing files from the public mirrors")
    normalize: StepList = Field(
        "standardize",
        description="preprocessing fitted on train: a step or a list of steps, e.g. standardize | "
                    "scale | none | mean_image | channel_mean | std | gcn | pca | zca | patch_whiten "
                    "(`[scale, {zca: {eps: 0.01}}]`)")
    augment: list[str | dict[str, Any]] = Field(
        default_factory=list,
        description="training-only batch augmentation, in order: crop | flip | alternating_flip | "
                    "translate | one_pixel_shift | rotate_scale | elastic | cutout "
                    "(`[{crop: {padding: 4}}, flip]`)")
    train_size: int | None = Field(
        None, ge=1, description="train on the first N training examples left after the validation split "
                                "(seeds/001's MLP: 5000); None = all")
    expand_shifts: bool = Field(
        False, description="Nielsen's expansion: add 4 one-pixel-shifted copies of every training image")
    balance: Literal["none", "sample", "weight"] = Field(
        "none", description="class imbalance: sample = class-balanced sampling; weight = class-weighted loss")
    device_dtype: Literal["uint8", "float16", "float32"] = Field(
        "uint8", description="storage dtype of the dataset on the training device")
    loader: Literal["device", "stream"] = Field(
        "device", description="device: the train split held on the device; stream: image folders "
                              "decoded batch by batch in a worker pool (datasets that do not fit)")
    workers: int = Field(2, ge=0, description="worker processes decoding batches for loader=stream")
    test_split: float = Field(
        0.2, gt=0, lt=1, description="fraction of each class held out as test when a folder has no train/test")
    channels: int | None = Field(
        None, ge=1, le=4, description="convert folder images to this many channels; None = as the first image")
    layout: Literal["auto", "nchw", "nhwc"] = Field(
        "auto", description="axis order of .npz/HDF5 image arrays; auto: channels are the smaller of axes 1 and 3")
    cache: bool = Field(True, description="cache decoded image folders as .npz in the data cache")
    hdf5_links: bool = Field(
        False, description="follow soft and external links and virtual or external-storage datasets in "
                           "an HDF5 file (data.source=hdf5 and the jets sources; refused by default, like links in archives)")
    jet_prep: list[str] | None = Field(
        None, description="jets sources: jet-image preprocessing in order, from centre | rotate | "
                          "flip | normalise (last); None = the source's own (jets: [], jets-aligned: "
                          "[centre, rotate, flip], jets-aligned-norm: the three and normalise)")

    @field_validator("normalize")
    @classmethod
    def _check_normalize(cls, value):
        validate_steps(value, "data.normalize")  # raises ValueError naming data.normalize and the step
        return value

    @field_validator("augment")
    @classmethod
    def _check_augment(cls, value):
        if value:
            validate_steps(value, "data.augment")
        return value

    @field_validator("jet_prep")
    @classmethod
    def _check_jet_prep(cls, value):
        if value is not None and "jet_prep" in SOURCE_KEY_CHECKS:
            SOURCE_KEY_CHECKS.get("jet_prep")(value)
        return value

    @model_validator(mode="after")
    def _jet_prep_needs_jets(self):
        if self.jet_prep is not None and not self.source.startswith("jets"):
            raise ValueError(f"data.jet_prep applies to the jets sources only (data.source is "
                             f"'{self.source}'); remove it or set it to null")
        return self
