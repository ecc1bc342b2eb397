"""The ``train:`` section: how long, in what batches, how often to log and checkpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cnnlab.configbase import Section
from cnnlab.train.early_stopping import EarlyStoppingConfig


class TrainConfig(Section):
    epochs: int | None = Field(5, ge=1, description="passes over the training set (or give iterations)")
    iterations: int | None = Field(None, ge=1, description="optimizer steps in all; overrides epochs")
    batch_size: int = Field(64, ge=1, description="mini-batch size")
    eval_batch_size: int = Field(1000, ge=1, description="batch size for validation and test")
    log_every: int = Field(50, ge=1, description="steps between progress-bar updates (host syncs)")
    memory_format: Literal["auto", "channels_last", "contiguous"] = Field(
        "auto", description="layout of weights and batches; auto: channels_last for conv nets on CPU and "
                            "CUDA (faster there, see benchmarks/lenet_cpu.py), else contiguous")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "fp32", description="autocast precision of the forward pass and loss; weights stay fp32; fp16 "
                            "(with a loss scaler) on CUDA only")
    compile: bool | Literal["max-autotune"] = Field(
        False, description="torch.compile the training forward pass (true, or max-autotune); the "
                           "compile time is logged apart from training time")
    early_stopping: EarlyStoppingConfig = Field(
        default_factory=EarlyStoppingConfig, description="early stopping (seeds/001): none, patience "
        "or threshold; `train.early_stopping: patience` is short for {algorithm: patience}")

    @model_validator(mode="after")
    def _some_length(self) -> "TrainConfig":
        if self.epochs is None and self.iterations is None:
            raise ValueError("give train.epochs or train.iterations")
        return self
