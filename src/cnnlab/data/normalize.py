"""``data.normalize`` -> the unfitted preprocessing pipeline. The registry of steps lives in
:mod:`cnnlab.data.preprocess`; this module imports every module that registers steps (the
whitening ones too), so registration runs one way.
"""

from __future__ import annotations

import cnnlab.data.whitening  # noqa: F401  (registers pca, zca, patch_whiten)
from cnnlab.data.preprocess import PREPROCESSORS, Pipeline
from cnnlab.data.stepconfig import validate_steps
from cnnlab.data.steps import build_step


def build_preprocess(spec, channels: int | None = None) -> Pipeline:
    """The unfitted pipeline for ``data.normalize`` (a step name or a list of steps); ValueError
    naming the key and the step for a bad one."""
    specs = validate_steps(spec, "data.normalize")
    return Pipeline([build_step(s, PREPROCESSORS) for s in specs], specs)


__all__ = ["PREPROCESSORS", "build_preprocess"]
