"""The ``data:`` section of an experiment config."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cnnlab.configbase import Section


class DataConfig(Section):
    """Where the images come from and how the validation split is carved.

    ``source`` names an entry of :data:`cnnlab.data.sources.SOURCES` (``mnist``, ``idx``...).
    """

    source: str = Field("mnist", description="dataset source name (see `cnnlab list sources`)")
    path: str | None = Field(None, description="folder or file of the dataset; None = default location")
    val_size: int = Field(10_000, ge=0, description="examples carved from train for validation")
    download: bool = Field(True, description="download missing files from the public mirrors")
    normalize: Literal["standardize", "scale", "none"] = Field(
        "standardize",
        description="standardize: per-channel (x-mean)/std fitted on train; scale: x/255; none",
    )
    device_dtype: Literal["uint8", "float16", "float32"] = Field(
        "uint8", description="storage dtype of the dataset on the training device")
