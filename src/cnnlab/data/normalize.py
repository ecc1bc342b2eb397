"""``data.normalize`` -> the unfitted preprocessing pipeline. The registry of steps lives in
:mod:`cnnlab.data.preprocess`; this module imports every module that registers steps (the
whitening ones too), so registration runs one way.
"""

from __future__ import annotations

import cnnlab.data.whitening  # noqa: F401  (registers pca, zca, patch_whiten)
from cnnlab.data.preprocess import PREPROCESSORS, Pipeline
from cnnlab.data.steps import build_step, parse_steps


def build_preprocess(spec, channels: int | None = None) -> Pipeline:
    """The unfitted pipeline for ``data.normalize`` (a step name or a list of steps)."""
    specs = parse_steps(spec, "data.normalize")
    return Pipeline([build_step(s, PREPROCESSORS, "data.normalize") for s in specs], specs)


__all__ = ["PREPROCESSORS", "build_preprocess"]
