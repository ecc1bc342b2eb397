"""What a filter responds to, and what an image's class score depends on (seeds/004: "the
patterns each filter maximally responds to"; cs231n "Visualizing what ConvNets learn").

- :func:`maximizing_inputs`: for filters ``f`` of a conv layer, the input ``x`` (in the
  network's preprocessed input space) that maximises the filter's mean activation
  ``a_f(x) = mean_{i,j} conv_f(x)[i, j]``, by gradient ascent from small seeded noise with the
  regularisers of Yosinski et al. 2015: each step jitters ``x`` by a random shift of up to
  ``jitter`` pixels, takes a step along the normalised gradient of ``a_f(x) - (l2/2)||x||^2``,
  ``x <- x + lr g / rms(g)``. All filters of a layer ascend together, one batch.
  For a first layer the answer is known in closed form -- a linear filter's mean response
  under an L2 penalty is maximised by a constant image of the colour ``sum_ij w[:, i, j]`` --
  so its picture is flat (its weights are the report's "first-layer filters"); deeper layers
  give the textures and parts they detect.
- :func:`top_patches`: the ``k`` images of a sample that activate a filter most (by its
  largest response over positions) and the patch each shows the unit: the unit's receptive
  field (:func:`receptive_field`), cut from the stored image, zero outside it.
- :func:`saliency`: Simonyan et al. 2014: ``M_ij = max_c |dS_y / dx_cij|``, the gradient of
  the class score (logit) ``S_y`` with respect to the input pixels.

Cost (measured for the report, see the README): one forward pass over the sample for the
patches, ``steps`` forward/backward passes of a ``filters``-image batch per conv layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.models.layers import Residual
from cnnlab.monitor.layers import parametric_layers


@dataclass
class Field:
    """A unit's receptive field in the input: ``size`` pixels, ``jump`` pixels between
    neighbouring units, and ``start`` the input coordinate where unit 0's field begins."""

    size: int = 1
    jump: int = 1
    start: int = 0

    def through(self, kernel: int, stride: int, padding: int) -> "Field":
        return Field(self.size + (kernel - 1) * self.jump, self.jump * stride, self.start - padding * self.jump)


def _first(value) -> int:
    return int(value[0] if isinstance(value, tuple) else value)


def receptive_field(model: nn.Module, target: nn.Module) -> Field | None:
    """The field of ``target``'s output units, following ``model``'s layers in order (an
    ``nn.Sequential`` whose residual blocks count by their body); None if not found."""

    def walk(seq: nn.Module, rf: Field) -> tuple[Field, bool]:
        for module in seq.children():
            if isinstance(module, Residual):
                inner, found = walk(module.body, rf)
                rf = inner
            elif isinstance(module, nn.Sequential):
                rf, found = walk(module, rf)
            else:
                found = module is target
                if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
                    rf = rf.through(_first(module.kernel_size), _first(module.stride), _first(module.padding))
            if found:
                return rf, True
        return rf, False

    rf, found = walk(model, Field())
    return rf if found else None


class _Capture:
    """Forward hook keeping a module's output."""

    def __init__(self, module: nn.Module):
        self.output: torch.Tensor | None = None
        self.handle = module.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output):
        self.output = output

    def __enter__(self) -> "_Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.remove()


def conv_layers(model: nn.Module):
    """The conv layers of a network (monitor's names: conv1, conv2...)."""
    return [layer for layer in parametric_layers(model) if layer.kind == "conv"]


@torch.no_grad()
def strongest_filters(model: nn.Module, module: nn.Module, x: torch.Tensor, count: int) -> list[int]:
    """The ``count`` filters of ``module`` with the largest mean response over ``x`` (not dead ones)."""
    with _Capture(module) as cap:
        model(x)
    return cap.output.float().mean(dim=(0, 2, 3)).topk(min(count, cap.output.shape[1])).indices.tolist()


def maximizing_inputs(model: nn.Module, module: nn.Module, filters: list[int], input_shape: tuple[int, int, int],
                      *, steps: int = 100, lr: float = 0.1, l2: float = 0.01, jitter: int = 2,
                      seed: int = 0) -> torch.Tensor:
    """``len(filters) x C x H x W`` inputs maximising each filter's mean activation (module docstring)."""
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    x = (0.1 * torch.randn(len(filters), *input_shape, generator=gen)).to(device)
    index = torch.tensor(filters, device=device)
    was_training = model.training
    model.eval()
    try:
        with _Capture(module) as cap:
            for _ in range(steps):
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
                xj = torch.roll(x, (dy, dx), dims=(2, 3)).requires_grad_(True)
                model(xj)
                act = cap.output[torch.arange(len(filters), device=device), index]  # n x H' x W'
                objective = act.mean(dim=(1, 2)).sum() - 0.5 * l2 * xj.pow(2).sum()
                (grad,) = torch.autograd.grad(objective, xj)
                grad = torch.roll(grad, (-dy, -dx), dims=(2, 3))
                rms = grad.flatten(1).pow(2).mean(1).sqrt().clamp_min(1e-12).view(-1, 1, 1, 1)
                x = (x + lr * grad / rms).detach()
    finally:
        model.train(was_training)
    return x.cpu()


def _crop(image: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """``image[:, top:top+size, left:left+size]``, zero where the window leaves the image."""
    c, h, w = image.shape
    out = torch.zeros(c, size, size, dtype=image.dtype)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + size, h), min(left + size, w)
    if t1 > t0 and l1 > l0:
        out[:, t0 - top:t1 - top, l0 - left:l1 - left] = image[:, t0:t1, l0:l1]
    return out


@torch.no_grad()
def top_patches(model: nn.Module, module: nn.Module, filters: list[int], x: torch.Tensor,
                images: torch.Tensor, k: int = 9) -> list[torch.Tensor]:
    """Per filter: ``k x C x r x r`` patches of ``images`` (stored format, matching the
    preprocessed ``x``) under the ``k`` strongest responses, one per image."""
    rf = receptive_field(model, module)
    with _Capture(module) as cap:
        model(x)
    out = cap.output.float().cpu()
    n, _, _, width = out.shape
    patches = []
    for f in filters:
        best, where = out[:, f].flatten(1).max(1)  # per image: the strongest position
        chosen = best.topk(min(k, n)).indices
        crops = []
        for i in chosen.tolist():
            row, col = divmod(int(where[i]), width)
            if rf is None:  # not a sequential network: show the whole image
                crops.append(images[i].cpu())
            else:
                crops.append(_crop(images[i].cpu(), rf.start + row * rf.jump, rf.start + col * rf.jump, rf.size))
        patches.append(torch.stack(crops))
    return patches


def saliency(model: nn.Module, x: torch.Tensor, label: int | None = None) -> tuple[torch.Tensor, int]:
    """``H x W`` map ``max_c |dS_y/dx_c|`` of one preprocessed image ``x`` (1 x C x H x W) for
    class ``label`` (default: the predicted class), and that class."""
    was_training = model.training
    model.eval()
    try:
        x = x.detach().clone().requires_grad_(True)
        scores = model(x)
        label = int(scores.argmax(1)) if label is None else label
        (grad,) = torch.autograd.grad(scores[0, label], x)
    finally:
        model.train(was_training)
    return grad[0].abs().amax(0).cpu(), label
