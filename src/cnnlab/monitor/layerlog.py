"""``layers.csv`` in a run directory: per-layer statistics over time, one row per layer per
epoch (long format, so any architecture fits). Like metrics.csv it is rewritten atomically
each epoch and trimmed on resume to the epochs of the checkpoint.

Columns: epoch, step, layer (conv1, fc2, tanh1...), kind (conv, fc, relu, tanh...), and
- parametric layers: grad_norm (mean over the epoch's log intervals of ||dL/dW||), weight_norm
  (at epoch end), update_ratio (mean ||dW||/||W|| of the steps right after each interval);
- nonlinearities: dead_fraction (relu), saturated_fraction (tanh, sigmoid), act_mean, act_std
  on a fixed probe batch at epoch end.
"""

from __future__ import annotations

import csv
from pathlib import Path

from cnnlab.atomic import atomic_write
from cnnlab.runfiles import read_table

LAYER_COLUMNS = ["epoch", "step", "layer", "kind", "grad_norm", "weight_norm", "update_ratio",
                 "dead_fraction", "saturated_fraction", "act_mean", "act_std"]
FILENAME = "layers.csv"


def read_layers(path: Path) -> list[dict]:
    """The rows of ``path`` (none if it does not exist); a CheckpointError naming it if damaged."""
    if not Path(path).is_file():
        return []
    return read_table(Path(path), LAYER_COLUMNS, integers=("epoch", "step"), texts=("layer", "kind"))


def write_layers(path: Path, rows: list[dict]) -> None:
    with atomic_write(path, "w") as f:
        writer = csv.DictWriter(f, fieldnames=LAYER_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else (repr(row[k]) if isinstance(row[k], float) else row[k])
                             for k in LAYER_COLUMNS})
