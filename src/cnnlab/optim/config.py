"""The ``optim:`` and ``schedule:`` sections. ``optim: adam`` is short for ``optim: {name: adam}``."""

from __future__ import annotations

from pydantic import Field

from cnnlab.configbase import Section


class OptimConfig(Section):
    name: str = Field("sgd", description="update rule (see `cnnlab list optimizers`)")
    lr: float = Field(0.05, gt=0, description="base learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum coefficient mu")
    nesterov: bool = Field(True, description="Nesterov momentum")
    l2: float = Field(0.0, ge=0, description="L2 strength lambda in (1/2) lambda sum w^2, weights only")


class ScheduleConfig(Section):
    name: str = Field("constant", description="learning-rate schedule (see `cnnlab list schedules`)")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up from 0 over this many epochs")
