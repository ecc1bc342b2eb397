"""FC-to-conv: evaluate a trained network at every position of a larger image in one pass.

cs231n (ConvNets, "Converting FC layers to CONV layers"): an FC layer looking at a
``C x H x W`` volume is a convolution with ``K`` filters of size ``H x W`` and no padding,

    W_fc in R^{K x (C H W)}   ->   W_conv[k, c, i, j] = W_fc[k, c H W + i W + j]

(``x.flatten(1)`` of an NCHW volume orders the inputs channel, row, column), and every later
FC layer, which sees a vector, is a 1x1 convolution. On the training size the converted network
outputs a ``K x 1 x 1`` map equal to the original logits. On a larger image it outputs a
``K x H' x W'`` *score map*: entry ``(i, j)`` is the original network evaluated on the
window of the training size whose top-left corner is at ``(i S, j S)``, where ``S`` is the
product of the strides of the layers before the first FC ("forwarding the converted ConvNet
one time is much more efficient than iterating the original over all those locations").

The identity is exact when no layer before the head pads (conv ``p``, pooling ``:ceil``):
otherwise a window cut out of the large image sees its neighbours' pixels where, evaluated on
its own, it would see zero padding. Either way the map is what the converted network
computes; ``cnnlab predict --sliding`` averages it (seeds/004: "resize bigger, average the
class scores").
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict

import torch
from torch import nn

from cnnlab.models.build import LayerInfo, Network
from cnnlab.models.spec import SpecError

#: kinds that slide over the image; the head is what follows the last of them
SPATIAL_KINDS = {"conv", "pool", "res"}
#: kinds the head may hold besides fc: they act on each position alone (or vanish)
POSITIONWISE_KINDS = {"relu", "tanh", "sigmoid", "lrelu", "prelu", "elu", "arctan", "softplus",
                      "softmax", "dropout", "maxout", "bn", "flatten"}


def _stride(info: LayerInfo) -> int:
    p = info.spec.params
    if info.spec.kind == "conv":
        return p.stride
    if info.spec.kind == "pool":
        return p.stride or p.size
    if info.spec.kind == "res":
        return math.prod(_stride(c) for c in info.children if c.spec.kind in SPATIAL_KINDS)
    return 1


class FullyConvolutional(nn.Sequential):
    """The converted network: images of at least ``window`` -> score maps ``N x K x H' x W'``.

    ``stride``: pixels between neighbouring positions of the map; position ``(i, j)`` scores
    the window ``[i S, i S + h) x [j S, j S + w)`` of the input."""

    def __init__(self, layers: OrderedDict, window: tuple[int, int], stride: int, num_classes: int,
                 exact: bool = True):
        super().__init__(layers)
        self.window, self.stride, self.num_classes = tuple(window), stride, num_classes
        self.exact = exact  # no padding before the head: the map is exactly the sliding window

    def map_size(self, height: int, width: int) -> tuple[int, int]:
        """(H', W') of the score map for an input of ``height x width`` (no padding case)."""
        return ((height - self.window[0]) // self.stride + 1, (width - self.window[1]) // self.stride + 1)

    def average_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The class scores averaged over every position of the map: ``N x K``."""
        return self(x).mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return (f"window={self.window[0]}x{self.window[1]}, stride={self.stride}, classes={self.num_classes}, "
                f"exact={self.exact}")


def pads(module: nn.Module) -> bool:
    """True when a conv or pooling layer in ``module`` pads its input or rounds its output up,
    the cases where a window of a larger image differs from the window alone."""
    for m in module.modules():
        padding = getattr(m, "padding", 0)
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)) and (
                any(p != 0 for p in (padding if isinstance(padding, tuple) else (padding,)))
                or getattr(m, "ceil_mode", False)):
            return True
    return False


def _fc_as_conv(fc: nn.Linear, in_shape: tuple[int, ...]) -> nn.Conv2d:
    c, h, w = in_shape if len(in_shape) == 3 else (in_shape[0], 1, 1)
    conv = nn.Conv2d(c, fc.out_features, (h, w))
    with torch.no_grad():
        conv.weight.copy_(fc.weight.reshape(fc.out_features, c, h, w))
        conv.bias.copy_(fc.bias)
    return conv.to(fc.weight.device, fc.weight.dtype)


def _bn_as_2d(bn: nn.BatchNorm1d) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    like = next(iter(bn.state_dict().values()))
    out = out.to(like.device, like.dtype)
    out.load_state_dict(bn.state_dict())
    return out


def fully_convolutional(net: nn.Module) -> FullyConvolutional:
    """The network with every FC layer after its last conv/pool as the equivalent convolution
    (module docstring). ``net`` is left as it is; the result is in eval mode."""
    if not isinstance(net, Network):
        raise SpecError(f"FC-to-conv needs a network built from a spec or a zoo name; "
                        f"{type(net).__name__} is a custom factory")
    infos = net.infos
    spatial = [i for i, info in enumerate(infos) if info.spec.kind in SPATIAL_KINDS]
    if not spatial:
        raise SpecError(f"{net.spec!r} has no conv or pooling layer: there is nothing to slide")
    last = spatial[-1]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    flattened: tuple[int, ...] | None = None  # the volume a dropped flatten layer received
    for i, ((name, module), info) in enumerate(zip(net.named_children(), infos)):
        kind = info.spec.kind
        if i <= last:
            layers[name] = copy.deepcopy(module)
        elif kind == "fc":
            layers[name] = _fc_as_conv(module, flattened or info.in_shape)
            flattened = None
        elif kind == "bn":
            layers[name] = _bn_as_2d(module) if isinstance(module, nn.BatchNorm1d) else copy.deepcopy(module)
        elif kind == "flatten":
            flattened = info.in_shape  # the fc after it, now a conv, takes the volume itself
        elif kind in POSITIONWISE_KINDS:
            layers[name] = copy.deepcopy(module)
        else:  # gap: the network already pools over all positions; nothing to convert
            raise SpecError(f"layer '{info.spec.token}' after the last conv/pool mixes positions; FC-to-conv "
                            "only converts fc layers (a network ending in gap already takes any size)")
    stride = math.prod(_stride(infos[i]) for i in spatial)
    body = nn.Sequential(*list(net.children())[:last + 1])
    return FullyConvolutional(layers, net.input_shape[1:], stride, net.num_classes, not pads(body)).eval()


def sliding_reference(net: nn.Module, x: torch.Tensor, window: tuple[int, int], stride: int) -> torch.Tensor:
    """The score map the slow way: ``net`` on every window of ``x`` at multiples of ``stride``
    (``N x K x H' x W'``); what :func:`fully_convolutional` computes in one pass."""
    h, w = window
    rows = range(0, x.shape[2] - h + 1, stride)
    cols = range(0, x.shape[3] - w + 1, stride)
    scores = torch.stack([torch.stack([net(x[:, :, i:i + h, j:j + w]) for j in cols], -1) for i in rows], -2)
    return scores
