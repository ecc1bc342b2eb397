"""Checkpoints: plain data + tensors, written atomically, loaded without unpickling code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, so
``torch.load(weights_only=True)`` reads it (no arbitrary code runs on load). It is written to
a temporary file in the same directory, fsynced, then renamed over the old one: a crash at
any moment leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cnnlab.atomic import atomic_write
from cnnlab.errors import CheckpointError

FORMAT = "cnnlab-checkpoint/1"


def save_checkpoint(state: dict, path: Path) -> None:
    with atomic_write(path) as f:
        torch.save({"format": FORMAT, **state}, f)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for damaged or unsafe files
        raise CheckpointError(f"{path}: not a readable cnnlab checkpoint ({exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cnnlab checkpoint (format {state.get('format') if isinstance(state, dict) else '?'})")
    return state


def load_model_weights(model: torch.nn.Module, weights: dict, origin: str) -> None:
    """Load weights, explaining an architecture mismatch instead of dumping torch's message."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    wrong_shape = [f"{k}: checkpoint {tuple(weights[k].shape)} vs model {tuple(v.shape)}"
                   for k, v in own.items() if k in weights and weights[k].shape != v.shape]
    if missing or unexpected or wrong_shape:
        details = []
        if missing:
            details.append(f"missing in checkpoint: {', '.join(missing[:5])}")
        if unexpected:
            details.append(f"not in this model: {', '.join(unexpected[:5])}")
        if wrong_shape:
            details.append("shape mismatch: " + "; ".join(wrong_shape[:5]))
        raise CheckpointError(f"{origin}: checkpoint is from a different architecture ("
                              + "; ".join(details) + ")")
    model.load_state_dict(weights)
