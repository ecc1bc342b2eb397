"""The training objective, written once: the trainer, the sanity probe and the overfit check
all minimise this.

    L = data_loss + penalty
    data_loss = - sum_i w_{y_i} sum_k q_ik log softmax(z_i)_k / sum_i w_{y_i}
    q_i = (1 - eps) onehot(y_i) + eps / K            (label smoothing, Szegedy et al. 2016)

with ``w`` the class weights of ``data.balance: weight`` (1 otherwise) and ``penalty`` the L2 /
L1 / elastic-net term of ``optim`` (:func:`cnnlab.optim.regularization`, weights only by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from cnnlab.optim import regularization


@dataclass
class Loss:
    """``Loss(optim_cfg, class_weight)(model, logits, y) -> (data_loss, total_loss)``."""

    optim: object                      # the run's optim section (label_smoothing, l2, l1, ...)
    class_weight: torch.Tensor | None = None

    def data_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), y, weight=self.class_weight,
                               label_smoothing=self.optim.label_smoothing)

    def __call__(self, model: torch.nn.Module, logits: torch.Tensor, y: torch.Tensor):
        data = self.data_loss(logits, y)
        penalty = regularization(self.optim, model)
        return data, (data if penalty is None else data + penalty)

    def without_penalty(self) -> "Loss":
        """The same data loss with regularisation off (the overfit check)."""
        off = {k: 0.0 for k in ("l2", "l1", "weight_decay") if hasattr(self.optim, k)}
        return Loss(self.optim.model_copy(update=off), self.class_weight)
