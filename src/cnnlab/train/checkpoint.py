"""Checkpoints: plain data + tensors, written atomically, loaded without unpickling code.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, so
``torch.load(weights_only=True)`` reads it (no arbitrary code runs on load). It is written to
a temporary file in the same directory, fsynced, then renamed over the old one: a crash at
any moment leaves either the previous checkpoint or the new one, never a torn file.
"""

from __future__ import annotations

import errno
import pickle
import shutil
from pathlib import Path

import torch

from cnnlab.atomic import atomic_write
from cnnlab.errors import CheckpointError

FORMAT = "cnnlab-checkpoint/1"


def save_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` atomically; a failed write (full disk, read-only folder) is an OSError
    naming ``path``, which still holds the previous checkpoint if there was one."""
    try:
        with atomic_write(path) as f:
            torch.save({"format": FORMAT, **state}, f)
    except RuntimeError as exc:  # torch's writer reports the failed write as "enforce fail at ..."
        full = shutil.disk_usage(path.parent).free < (1 << 20)
        raise OSError(errno.ENOSPC if full else errno.EIO,
                      "no space left on device" if full else f"write failed ({str(exc).splitlines()[0][:120]})",
                      str(path)) from None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu", fields: dict | None = None) -> dict:
    """A file written by :func:`save_checkpoint`, read without running code (``weights_only``);
    ``fields``: what it must hold, name -> type (default :data:`FIELDS`, a training checkpoint's)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint there")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message goes on to suggest weights_only=False: the way to run the file's code.
        # Only what its unpickler objected to is kept.
        text = str(exc)
        text = text.rpartition("trusted source.")[2] or text
        text = text.rpartition("WeightsUnpickler error:")[2] or text
        reason = " ".join(text.partition("Check the documentation")[0].split())
        if "global" in reason.lower():
            raise CheckpointError(f"{path}: refused: it refers to Python code ({reason[:200]}), which could "
                                  "run when loaded; cnnlab checkpoints hold only tensors and plain data") from None
        raise CheckpointError(f"{path}: not a readable cnnlab checkpoint ({reason[:200] or 'not a pickle'}); "
                              "the file is truncated or corrupt, or not a checkpoint") from None
    except Exception as exc:  # torch raises several types for damaged files
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise CheckpointError(f"{path}: not a readable cnnlab checkpoint ({exc.__class__.__name__}: "
                              f"{first}); the file is truncated or corrupt") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a cnnlab checkpoint (format {state.get('format') if isinstance(state, dict) else '?'})")
    _check_fields(state, path, FIELDS if fields is None else fields)
    return state


#: what every checkpoint holds, with the type each must have (the trainer's state_dict)
FIELDS = {"epoch": int, "step": int, "model": dict, "preprocess": dict, "optimizer": dict,
          "scheduler": dict, "classes": list, "input_shape": list, "best_epoch": int}


def _check_fields(state: dict, path: Path, fields: dict) -> None:
    """CheckpointError naming the first field that is missing or of the wrong type (a file made
    by hand or by another program: the format tag alone proves nothing)."""
    for key, kind in fields.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            got = "missing" if key not in state else f"a {type(value).__name__}"
            raise CheckpointError(f"{path}: '{key}' is {got}, not a {kind.__name__}; not a checkpoint "
                                  "written by cnnlab (or damaged)")
    if fields is not FIELDS:
        return
    shape = state["input_shape"]
    if len(shape) != 3 or not all(isinstance(v, int) and v > 0 for v in shape):
        raise CheckpointError(f"{path}: 'input_shape' is {shape[:4]!r}, not 3 positive integers (C, H, W)")
    if not state["classes"] or not all(isinstance(c, str) for c in state["classes"]):
        raise CheckpointError(f"{path}: 'classes' is not a list of class names")


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
