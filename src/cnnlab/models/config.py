"""The ``model:`` section of an experiment config. ``model: lenet5`` is short for
``model: {arch: lenet5}``."""

from __future__ import annotations

from pydantic import Field

from cnnlab.configbase import Section


class ModelConfig(Section):
    arch: str = Field("lenet5", description="a zoo name (see `cnnlab list models`)")
