"""The ``model:`` section of an experiment config. ``model: lenet5`` is short for
``model: {arch: lenet5}``; ``arch`` may also be a spec string or a YAML list of layers
(:mod:`cnnlab.models.spec`). ``init_from`` and ``freeze`` start a run from trained weights
(:mod:`cnnlab.train.transfer`; checked here without torch and without touching the disk, so a
run whose source was deleted still resumes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cnnlab.configbase import Section


class ModelConfig(Section):
    arch: str | list[str | dict[str, Any]] = Field(
        "lenet5", description="a zoo name (`cnnlab list models`), a spec string "
                              "('conv5-16p2 relu pool2 fc') or a YAML list of layers")
    init: str | None = Field(
        None, description="weight init: small | glorot | xavier | he | dirac (biases are zero); "
                          "default: the zoo model's own, glorot for specs")
    zero_last: bool | None = Field(
        None, description="start the output layer at zero; default: the zoo model's own, false for specs")
    dropout_mode: Literal["inverted", "classic"] | None = Field(
        None, description="inverted (scale by 1/keep while training) or classic (scale by keep at "
                          "test time) for dropout layers that do not say; default: the zoo model's own, "
                          "inverted for specs")
    keep: list[float] | None = Field(
        None, description="keep probabilities, one per dropout layer of the arch in order "
                          "(the first may act on the input); replaces the arch's rates")
    drop: list[float] | None = Field(
        None, description="drop probabilities (1 - keep), one per dropout layer; "
                          "give keep or drop, not both")

    sync_bn: bool = Field(
        False, description="under DDP (more than one rank), batch norm statistics over the global batch "
                           "(torch.nn.SyncBatchNorm; CUDA only), instead of each rank's shard")
    init_from: str | None = Field(
        None, description="start from trained weights: a run directory (its best.pt), a "
                          "checkpoint or state-dict .pt file, or a .safetensors file (`cnnlab export`); "
                          "layers are matched by name and shape, the rest keep their init")
    freeze: list[str | int] = Field(
        default_factory=list,
        description="layers that do not train (no gradient, no weight decay): names, prefixes, globs "
                    "or indices as in optim.layer_lr; 'body' = every layer but the last (the head)")

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, value):
        from cnnlab.errors import ConfigError
        from cnnlab.models.zoo import resolve_arch  # no torch

        try:
            resolve_arch(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("init")
    @classmethod
    def _known_init(cls, value):
        from cnnlab.models.init import INITS  # no torch

        return INITS.validate(value) if value is not None else value

    @field_validator("init_from")
    @classmethod
    def _init_from_text(cls, value):
        if value is not None and not value.strip():
            raise ValueError("model.init_from is empty; give a run directory, a .pt or a .safetensors file")
        return value

    @field_validator("freeze")
    @classmethod
    def _freeze_patterns(cls, value):
        if any(isinstance(v, str) and not v.strip() for v in value):
            raise ValueError(f"model.freeze has an empty pattern: {value}")
        return value

    @field_validator("keep")
    @classmethod
    def _keep_range(cls, value):
        if value is not None and not all(0.0 < p <= 1.0 for p in value):
            raise ValueError(f"keep probabilities must be in (0, 1], got {value}")
        return value

    @field_validator("drop")
    @classmethod
    def _drop_range(cls, value):
        if value is not None and not all(0.0 <= p < 1.0 for p in value):
            raise ValueError(f"drop probabilities must be in [0, 1), got {value}")
        return value

    @model_validator(mode="after")
    def _keep_or_drop(self):
        if self.keep is not None and self.drop is not None:
            raise ValueError("give model.keep (keep probabilities) or model.drop (drop probabilities), not both")
        return self
