"""Class imbalance (seeds/004; the quark/gluon jets of seeds/000 are 65% / 35%).

Two remedies, selected by ``data.balance``:

- ``sample``: class-balanced sampling. Example i of class c is drawn with probability
  proportional to 1 / n_c, so every class is expected to fill 1/K of each batch.
- ``weight``: class-weighted loss, w_c = N / (K n_c) (so weights average to 1 over the
  training examples), used as ``F.cross_entropy(logits, y, weight=w)``.
"""

from __future__ import annotations

import torch

from cnnlab.errors import DataError


def class_counts(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(labels.cpu(), minlength=num_classes)


def _counts_checked(labels: torch.Tensor, num_classes: int, classes: list[str] | None) -> torch.Tensor:
    counts = class_counts(labels, num_classes)
    empty = [(classes or [str(c) for c in range(num_classes)])[c] for c in range(num_classes) if counts[c] == 0]
    if empty:
        raise DataError(f"data.balance: class(es) {', '.join(empty)} have no training examples; "
                        "they cannot be balanced")
    return counts


def class_weights(labels: torch.Tensor, num_classes: int, classes: list[str] | None = None) -> torch.Tensor:
    """w_c = N / (K n_c)."""
    counts = _counts_checked(labels, num_classes, classes).double()
    return (len(labels) / (num_classes * counts)).float()


def sample_weights(labels: torch.Tensor, num_classes: int, classes: list[str] | None = None) -> torch.Tensor:
    """Per-example sampling weight 1 / n_{y_i}."""
    counts = _counts_checked(labels, num_classes, classes).double()
    return (1.0 / counts)[labels.cpu()]
