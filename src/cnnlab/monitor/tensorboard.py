"""Optional TensorBoard logging (``monitor.tensorboard: true``): scalars of the metrics row and
the per-layer statistics, histograms of weights and gradients, first-layer filters as an image.
metrics.csv and layers.csv stay the source of truth; this is a live view of the same numbers.
Needs the ``tensorboard`` package (``pip install 'cnnlab[tensorboard]'``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from cnnlab.errors import ConfigError
from cnnlab.monitor.layers import parametric_layers
from cnnlab.monitor.visual import filter_grid


def require_tensorboard() -> None:
    if importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("monitor.tensorboard=true needs the tensorboard package, which is not "
                          "installed: pip install 'cnnlab[tensorboard]' (or set monitor.tensorboard=false)")


class TensorBoardWriter:
    def __init__(self, path: Path, purge_step: int | None = None):
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        # purge_step drops events a resumed run is about to write again.
        self.writer = SummaryWriter(str(path), purge_step=purge_step or None)

    def log_epoch(self, model: torch.nn.Module, input_shape, row: dict, layer_rows: list[dict]) -> None:
        step = int(row["step"])
        for key, value in row.items():
            if key not in ("epoch", "step") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"metrics/{key}", value, step)
        for lr in layer_rows:
            for key in ("grad_norm", "update_ratio", "weight_norm", "dead_fraction", "saturated_fraction"):
                if lr.get(key) is not None:
                    self.writer.add_scalar(f"{key}/{lr['layer']}", lr[key], step)
        for layer in parametric_layers(model):
            self.writer.add_histogram(f"weights/{layer.name}", layer.weight.detach().float().cpu(), step)
            if layer.weight.grad is not None:
                self.writer.add_histogram(f"grads/{layer.name}", layer.weight.grad.detach().float().cpu(), step)
        grid = filter_grid(model, input_shape)
        if grid is not None:
            self.writer.add_image(f"filters/{grid[0]}", grid[1], step, dataformats="HWC")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
