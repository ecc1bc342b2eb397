"""Numerical gradient checking (seeds/003 "Gradient Checking", the cs231n recipe).

The layer (or network) runs in float64 in training mode on a random input; the scalar
``f = sum(R * layer(x))`` with a fixed random ``R`` is differentiated two ways:

* analytic: autograd's backward pass, the gradient being tested;
* numeric: centred differences ``(f(w + h) - f(w - h)) / 2h`` per checked entry, O(h^2) accurate.

The relative error per entry is ``|a - n| / max(|a|, |n|, z)`` and each parameter (and the
input) reports its maximum. ``z = 1e-3 * max |a|`` over all gradients of the check: an entry
a thousand times smaller than the largest gradient is compared on that scale, because the
difference quotient carries ~1e-10 of rounding noise (eps |f| / h) and a gradient that is
exactly zero (a conv bias before batch norm) would otherwise report pure noise as error 1.
cs231n: below 1e-7 is good; we require 1e-6.
Dropout layers reuse one mask for every evaluation (``frozen_dropout_masks``), batch norm uses
batch statistics (training mode), so ``f`` is a fixed smooth function of the weights.
All randomness comes from a forked, seeded torch RNG: results are reproducible and the
caller's RNG state is untouched.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from tqdm import tqdm

from cnnlab.models.build import BuildContext, build_layers, check_parameters_fit, probe_layers, volume
from cnnlab.models.layers import frozen_dropout_masks
# LAYER_CHECKS, run by ``cnnlab gradcheck`` with no argument: every layer kind's cases (a spec
# fragment on a small input volume (C, H, W) or vector (N,)), written in the kind's LayerKind.
from cnnlab.models.spec import LAYER_CHECKS, parse_spec

TOLERANCE = 1e-6


def _relative_errors(analytic: torch.Tensor, numeric: torch.Tensor, floor: float) -> torch.Tensor:
    scale = torch.maximum(analytic.abs(), numeric.abs()).clamp_min(floor)
    return (analytic - numeric).abs() / scale


def _entries(numel: int, samples: int | None) -> torch.Tensor:
    if samples is None or numel <= samples:
        return torch.arange(numel)
    return torch.randperm(numel)[:samples]


def check_module(module: nn.Module, input_shape: tuple[int, ...], batch: int = 4, h: float = 1e-5,
                 samples: int | None = None, seed: int = 0, progress: bool = False) -> list[dict]:
    """Gradient-check ``module`` (a copy, in float64) on a random batch of ``input_shape``.

    Returns one record per parameter and one for the input: name, shape, entries checked,
    max relative error, max absolute error. ``samples`` caps the entries checked per tensor
    (random entries; None = all). ``progress`` shows a bar over the tensors on stderr."""
    model = copy.deepcopy(module).double().train()
    with torch.random.fork_rng(devices=[]), frozen_dropout_masks(model):
        torch.manual_seed(seed)
        x = torch.randn(batch, *input_shape, dtype=torch.float64, requires_grad=True)
        out = model(x)  # draws the dropout masks, reused from now on
        weights = torch.randn_like(out)

        def f() -> float:
            with torch.no_grad():
                return float((model(x) * weights).sum())

        model.zero_grad()
        (out * weights).sum().backward()
        targets = [(name, p) for name, p in model.named_parameters() if p.requires_grad] + [("input", x)]
        floor = 1e-3 * max(float(t.grad.abs().max()) for _, t in targets)
        records = []
        for name, tensor in tqdm(targets, desc="gradcheck", unit="tensor", leave=False, disable=not progress):
            analytic = tensor.grad.detach().reshape(-1).clone()
            flat = tensor.data.view(-1)
            idx = _entries(flat.numel(), samples)
            numeric = torch.empty(len(idx), dtype=torch.float64)
            for j, i in enumerate(idx.tolist()):
                old = float(flat[i])
                flat[i] = old + h
                plus = f()
                flat[i] = old - h
                minus = f()
                flat[i] = old
                numeric[j] = (plus - minus) / (2 * h)
            rel = _relative_errors(analytic[idx], numeric, floor)
            records.append({"name": name, "shape": list(tensor.shape), "checked": len(idx),
                            "max_rel_error": float(rel.max()) if len(idx) else 0.0,
                            "max_abs_error": float((analytic[idx] - numeric).abs().max()) if len(idx) else 0.0})
    return records


def check_layers(spec: str, input_shape: tuple[int, ...], seed: int = 0, **kwargs) -> list[dict]:
    """Gradient-check the layers of a spec fragment (``"conv3-3p1 maxout2"``) on ``input_shape``;
    torch's default init, seeded on a forked RNG."""
    specs = parse_spec(spec, "gradcheck")
    probe, _ = probe_layers(specs, input_shape, BuildContext(num_classes=10))
    check_parameters_fit(probe, 2, "as the float64 copy the check runs")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers, _, _ = build_layers(specs, tuple(input_shape), BuildContext(num_classes=10))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: thread hand-offs cost more than the arithmetic
    try:
        return check_module(layers, input_shape, seed=seed, **kwargs)
    finally:
        torch.set_num_threads(threads)


def worst(records: list[dict]) -> float:
    return max((r["max_rel_error"] for r in records), default=0.0)


def default_input_shape(spec: str) -> tuple[int, ...]:
    """A small input for a layer given on the command line: a 2 x 6 x 6 volume."""
    for name, shape in LAYER_CHECKS:
        if name == spec:
            return shape
    return (2, 6, 6)


def describe(shape: tuple[int, ...]) -> str:
    return volume(shape) if len(shape) in (1, 3) else "x".join(map(str, shape))


__all__ = ["LAYER_CHECKS", "TOLERANCE", "check_layers", "check_module", "describe", "worst"]
