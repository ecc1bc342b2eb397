"""The ``monitor:`` section: sanity checks, per-layer statistics, optional TensorBoard."""

from __future__ import annotations

from pydantic import Field

from cnnlab.configbase import Section


class MonitorConfig(Section):
    """What `cnnlab train` watches besides the loss (seeds/002 "Babysitting the Learning Process")."""

    sanity_at_start: bool = Field(
        True, description="quick sanity checks before the first epoch (initial loss vs ln C, "
                          "symmetry, saturation, dead ReLUs, update/weight ratio); warnings only")
    sanity_examples: int = Field(128, ge=1, description="training examples in the sanity probe batch")
    overfit_examples: int = Field(20, ge=1, description="`cnnlab sanity`: examples the net must overfit")
    overfit_steps: int = Field(200, ge=1, description="`cnnlab sanity`: full-batch steps allowed to reach "
                                                      "100% training accuracy on them")
    layer_stats: bool = Field(True, description="write layers.csv: per-layer gradient norm, update/weight "
                                                "ratio, dead-ReLU and saturated-unit fractions per epoch")
    probe_examples: int = Field(128, ge=1, description="training examples pushed through the net at each "
                                                       "epoch end for the activation statistics")
    tensorboard: bool = Field(False, description="also write TensorBoard events to RUN_DIR/tensorboard "
                                                 "(needs `pip install cnnlab[tensorboard]`)")
