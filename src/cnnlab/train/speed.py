"""How the training step runs on the device: memory layout, precision and compilation
(``train.memory_format``, ``train.precision``, ``train.compile``). None of them changes what is
computed beyond floating-point rounding, and checkpoints hold the plain module's weights whatever
they are (no ``_orig_mod.`` keys, NCHW-loadable tensors).

* **Memory format.** ``channels_last`` stores N x C x H x W images as N x H x W x C in memory, so
  a convolution reads all channels of a pixel contiguously; oneDNN (CPU) and cuDNN (GPU) convolve
  that layout faster. ``auto`` picks it for networks with convolutions on CPU and CUDA (measured:
  ``benchmarks/lenet_cpu.py``), and the default layout for networks without (no gain).
* **Precision.** ``bf16`` and ``fp16`` run the forward pass and the loss under
  :func:`torch.autocast` (matrix products and convolutions in half precision, reductions and the
  loss in float32); the weights, gradients and optimizer state stay float32. ``fp16`` needs a
  loss scale against underflowing gradients (:class:`torch.amp.GradScaler`: the loss times S,
  gradients divided by S before clipping and the step, S halved on inf/NaN and doubled every
  2000 clean steps); it is CUDA-only here. ``bf16`` has float32's exponent range, needs no
  scaling, and runs on the CPU too.
* **Compile.** ``true`` / ``max-autotune``: :func:`torch.compile` of the module for the training
  forward pass; its first steps compile, and that time is logged apart from training time.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.errors import ConfigError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def has_convolutions(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def resolve_memory_format(choice: str, device: torch.device, model: nn.Module) -> torch.memory_format:
    """``train.memory_format`` -> the layout of the weights and input batches."""
    if choice == "channels_last" or (choice == "auto" and device.type in ("cpu", "cuda") and has_convolutions(model)):
        return torch.channels_last
    return torch.contiguous_format


@dataclass
class StepSettings:
    """What the trainer needs to run a step: the layout, the autocast context, the loss scaler
    and the module that computes the forward pass (compiled or not)."""

    memory_format: torch.memory_format
    precision: str
    device_type: str
    scaler: torch.amp.GradScaler | None
    forward: nn.Module

    def autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=AUTOCAST_DTYPES[self.precision])

    def batch(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x


def step_settings(train_cfg, optim_cfg, model: nn.Module, device: torch.device, group=None,
                  sync_bn: bool = False) -> StepSettings:
    """Apply the layout to ``model`` (in place) and build the step's settings; with a
    distributed ``group`` the forward module is DDP over ``model`` (:mod:`cnnlab.train.distributed`)."""
    from cnnlab.train.distributed import Group, wrap

    precision = train_cfg.precision
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.precision=fp16 needs a CUDA device (this run uses {device}): fp16 needs a "
                          "loss scaler, which cnnlab runs on CUDA only; use train.precision=bf16 on the CPU")
    if precision != "fp32" and optim_cfg.name == "lbfgs":
        raise ConfigError("optim.name=lbfgs with train.precision="
                          f"{precision}: L-BFGS's line search needs float32 losses; use train.precision=fp32")
    memory_format = resolve_memory_format(train_cfg.memory_format, device, model)
    model.to(memory_format=memory_format)
    forward = wrap(model, group or Group(), device, sync_bn)  # model.sync_bn: SyncBatchNorm under DDP
    if train_cfg.compile:
        mode = "max-autotune" if train_cfg.compile == "max-autotune" else None
        forward = torch.compile(forward, mode=mode)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return StepSettings(memory_format, precision, device.type, scaler, forward)
