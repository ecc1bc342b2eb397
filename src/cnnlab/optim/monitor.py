"""Watching one metric of the per-epoch row: shared by reduce-on-plateau and early stopping."""

from __future__ import annotations

from cnnlab.errors import ConfigError
from cnnlab.registry import did_you_mean

#: name fragments that say which way is better (Keras guesses the same way)
_MAXIMIZE = ("acc", "auc", "precision", "recall", "f1")
_MINIMIZE = ("loss", "error", "err")


def resolve_mode(metric: str, mode: str, key: str) -> str:
    """'min' or 'max' for ``metric``; ``mode: auto`` guesses from the name or says what to pass."""
    if mode in ("min", "max"):
        return mode
    name = metric.lower()
    if any(f in name for f in _MINIMIZE):
        return "min"
    if any(f in name for f in _MAXIMIZE):
        return "max"
    raise ConfigError(f"{key}: cannot tell whether '{metric}' should go up or down; "
                      f"set {key.rsplit('.', 1)[0]}.mode to 'max' or 'min'")


def metric_value(row: dict, metric: str, key: str) -> float:
    """``row[metric]`` as a float, or a ConfigError listing the metrics this run has."""
    value = row.get(metric)
    if value is None:
        available = sorted(k for k, v in row.items() if isinstance(v, (int, float)) and v is not None
                           and k not in ("epoch", "step"))
        why = ("it has no value (the run has no validation split: data.val_size is 0)"
               if metric in row else "no such metric")
        raise ConfigError(f"{key}: '{metric}': {why}.{did_you_mean(metric, available)} "
                          f"Metrics of this run: {', '.join(available)}")
    return float(value)


def improvement(value: float, best: float | None, mode: str) -> float:
    """How much better ``value`` is than ``best`` (positive = better; +inf when no best yet)."""
    if best is None:
        return float("inf")
    return value - best if mode == "max" else best - value
