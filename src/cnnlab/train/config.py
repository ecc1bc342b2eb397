"""The ``train:`` section: how long, in what batches, how often to log and checkpoint."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from cnnlab.configbase import Section
from cnnlab.train.early_stopping import EarlyStoppingConfig


class LookaheadConfig(Section):
    """``train.lookahead`` (:mod:`cnnlab.train.lookahead`): ``true`` is short for ``{enabled: true}`` (airbench94's values)."""

    enabled: bool = Field(False, description="average the weights and copy the average back (airbench94)")
    every: int = Field(5, ge=1, description="optimizer steps between averaging updates")
    start_epochs: float = Field(3.0, ge=0, description="first epoch (0-based) that averages")
    decay_base: float = Field(0.95, gt=0, lt=1, description="per-step decay; rho = decay_base^every (t/T)^decay_pow")
    decay_pow: float = Field(3.0, ge=0, description="warm-up power of the decay over training")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"enabled": data} if isinstance(data, bool) else data


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
    lookahead: LookaheadConfig = Field(
        default_factory=LookaheadConfig, description="airbench94's lookahead averaging of the weights "
        "(train/lookahead.py); `train.lookahead: true` is short for {enabled: true}")
    tta: Literal["none", "flip", "flip_translate"] = Field(
        "none", description="test-time augmentation of validation and test (train/tta.py): logits "
        "averaged over flipped (and 1-pixel translated) views, as airbench94's tta_level 1 (2)")

    @model_validator(mode="after")
    def _some_length(self) -> "TrainConfig":
        if self.epochs is None and self.iterations is None:
            raise ValueError("give train.epochs or train.iterations")
        return self
