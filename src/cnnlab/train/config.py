"""The ``train:`` section: how long, in what batches, how often to log and checkpoint."""

from __future__ import annotations

from pydantic import Field, model_validator

from cnnlab.configbase import Section


class TrainConfig(Section):
    epochs: int | None = Field(5, ge=1, description="passes over the training set (or give iterations)")
    iterations: int | None = Field(None, ge=1, description="optimizer steps in all; overrides epochs")
    batch_size: int = Field(64, ge=1, description="mini-batch size")
    eval_batch_size: int = Field(1000, ge=1, description="batch size for validation and test")
    log_every: int = Field(50, ge=1, description="steps between progress-bar updates (host syncs)")

    @model_validator(mode="after")
    def _some_length(self) -> "TrainConfig":
        if self.epochs is None and self.iterations is None:
            raise ValueError("give train.epochs or train.iterations")
        return self
