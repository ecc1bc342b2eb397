"""Evaluation of a model on a split: loss, accuracy, predictions, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.data import ArrayDataset, DeviceLoader
from cnnlab.train.tta import tta_logits


@dataclass
class SplitResult:
    loss: float
    accuracy: float
    probabilities: torch.Tensor  # N x C, on CPU
    labels: torch.Tensor         # N, on CPU

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(1)

    def confusion_matrix(self, num_classes: int) -> torch.Tensor:
        """``cm[i, j]`` = number of examples of true class i predicted as j."""
        index = self.labels * num_classes + self.predictions
        return torch.bincount(index, minlength=num_classes**2).view(num_classes, num_classes)

    def per_class_accuracy(self, num_classes: int) -> list[float]:
        cm = self.confusion_matrix(num_classes).double()
        return (cm.diag() / cm.sum(1).clamp_min(1)).tolist()


@torch.no_grad()
def evaluate_split(model: torch.nn.Module, data: ArrayDataset, preprocess, batch_size: int,
                   tta: str = "none") -> SplitResult:
    """One pass in eval mode; sums stay on the device until the end (one host sync).
    ``tta``: test-time augmentation (:mod:`cnnlab.train.tta`), on the stored images."""
    was_training = model.training
    model.eval()
    device = data.images.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    probs = []

    def forward(images: torch.Tensor) -> torch.Tensor:
        return model(preprocess(images) if preprocess is not None else images)

    for x, y in DeviceLoader(data, batch_size):
        logits = tta_logits(forward, x, tta)
        loss_sum += F.cross_entropy(logits, y, reduction="sum").double()
        probs.append(logits.softmax(1))
    model.train(was_training)
    probabilities = torch.cat(probs).cpu()
    labels = data.labels.cpu()
    n = max(1, len(labels))
    accuracy = (probabilities.argmax(1) == labels).double().mean().item() if len(labels) else 0.0
    return SplitResult(loss_sum.item() / n, accuracy, probabilities, labels)
