"""Classifier metrics shared by evaluation and reports: ROC curve and its area.

For a two-class problem with scores s (higher = more signal-like), the ROC curve is the set of
(false-positive rate, true-positive rate) over all thresholds; AUC is its area (the probability
that a random positive scores above a random negative, ties counted half).
"""

from __future__ import annotations

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (fpr, tpr, thresholds), thresholds decreasing; positives are ``labels == 1``."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.all() or (~labels).all():
        raise ValueError("ROC needs examples of both classes")
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    distinct = np.r_[np.nonzero(np.diff(scores))[0], len(scores) - 1]
    tps = np.cumsum(labels)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / labels.sum()]
    fpr = np.r_[0.0, fps / (~labels).sum()]
    return fpr, tpr, np.r_[np.inf, scores[distinct]]


def auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    """Area under a curve by the trapezoid rule (exact for the step ROC with ties halved)."""
    return float(np.trapezoid(tpr, fpr))
