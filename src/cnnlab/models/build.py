"""Spec -> ``nn.Module``, inferring every layer's output volume at build time.

Spatial output sizes follow cs231n (seeds/004): ``(W - F + 2P)/S + 1``. A convolution whose
size is not a positive integer is an error naming the layer, its input volume and the
formula (seeds/004: "(10 - 3 + 0)/2 + 1 = 4.5 ... impossible to use stride S = 2"). Pooling
is strict too unless the layer (``pool2:ceil``) or the network (zoo models: ceil, as Caffe
and cuda-convnet do) says how to round.

Volumes are ``(C, H, W)`` tensors' shapes; messages print them the seeds' way, W x H x D.

A network is built twice: first on torch's ``meta`` device (shapes and parameter counts, no
memory), then for real once its parameters are known to fit in the available memory
(:func:`check_parameters_fit`): ``fc99999999`` is a message, not an allocator traceback or
the kernel's OOM killer.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch
from torch import nn

from cnnlab.models import layers as L
from cnnlab.models.spec import ACTIVATION_KINDS, LINEAR_KINDS, LayerSpec, SpecError
from cnnlab.registry import Registry

Shape = tuple[int, ...]  # (C, H, W) volume or (N,) vector


def volume(shape: Shape) -> str:
    """A shape as the seeds print it: ``32x32x16`` (W x H x D); vectors as ``1x1xN``."""
    if len(shape) == 3:
        return f"{shape[2]}x{shape[1]}x{shape[0]}"
    return f"1x1x{shape[0]}"


@dataclass
class BuildContext:
    """What layers need to know beyond their own parameters."""

    num_classes: int
    dropout_mode: str = "inverted"
    pool_round: str = "strict"
    where: str = ""  # the layer being built, for error messages
    path: str = ""  # its module path ("res1"): a block names its body's layers under it
    depth: int = 0  # its nesting inside res blocks


@dataclass
class LayerInfo:
    """One built layer, for summaries and init: its spec, module and shapes."""

    name: str  # module path, e.g. "conv2" or "res1.body.bn1"
    spec: LayerSpec
    module: nn.Module
    in_shape: Shape
    out_shape: Shape
    depth: int = 0  # nesting inside res blocks
    activation: str | None = None  # linear layers: the nonlinearity applied to their output
    pieces: int = 1  # linear layers feeding a maxout: pieces per unit
    children: list["LayerInfo"] = field(default_factory=list)


class Built(NamedTuple):
    """What a builder returns: the layer's module, its output shape and, for a block, the
    infos of its body's layers."""

    module: nn.Module
    out_shape: Shape
    children: tuple[LayerInfo, ...] = ()


#: ``builder(spec, in_shape, ctx, pieces) -> (module, out_shape[, children])``: the module of one
#: layer and its output-shape rule (``pieces``: maxout pieces per unit for a linear layer, else 1).
Builder = Callable[[LayerSpec, Shape, BuildContext, int], tuple]
#: One builder per layer kind, under the kind's name. Everything else about a kind (grammar,
#: role, summary row, gradcheck cases) is plain data in its ``spec.LAYERS`` entry; builders
#: live here because they need torch and ``spec.py`` must not import it.
BUILDERS: Registry[Builder] = Registry("layer builder")


def _same_shape(name: str):
    """Register the builder of a kind whose output shape is its input's (activations, bn,
    dropout, softmax): the decorated ``make(spec, in_shape, ctx) -> nn.Module`` is all it needs."""

    def add(make: Callable[[LayerSpec, Shape, BuildContext], nn.Module]):
        BUILDERS.register(name)(lambda spec, in_shape, ctx, pieces: (make(spec, in_shape, ctx), in_shape))
        return make

    return add


def _spatial(name: str, what: str, n: int, f: int, p: int, s: int, rounding: str, where: str,
             in_shape: Shape) -> int:
    exact = (n - f + 2 * p) / s + 1
    formula = f"(W - F + 2P)/S + 1 = ({n} - {f} + 2*{p})/{s} + 1 = {exact:g}"
    if rounding == "ceil":
        out = math.ceil((n - f + 2 * p) / s) + 1
        if (out - 1) * s >= n + p:  # the last window must start inside the input (torch rule)
            out -= 1
    elif rounding == "floor":
        out = math.floor(exact)
    else:
        out = exact
    if out < 1:
        raise SpecError(f"{where}: output {what} {formula} is not positive on input volume "
                        f"{volume(in_shape)} (W x H x D); the {name} window is larger than its input")
    if out != int(out):
        fix = (" use :floor or :ceil to round (e.g. pool2:ceil)," if name == "pool" else "")
        raise SpecError(f"{where}: output {what} {formula} is not an integer on input volume "
                        f"{volume(in_shape)} (W x H x D);{fix} change the stride, padding or window size")
    return int(out)


def _need_volume(spec: LayerSpec, in_shape: Shape, where: str) -> None:
    if len(in_shape) != 3:
        raise SpecError(f"{where}: '{spec.token}' needs an image volume (W x H x D) but gets a "
                        f"vector of {in_shape[0]} (after fc, gap or flatten); put it before those")


@BUILDERS.register("conv")
def _conv(spec, in_shape, ctx, pieces):
    where, p = ctx.where, spec.params
    _need_volume(spec, in_shape, where)
    c, h, w = in_shape
    oh = _spatial("conv", "height", h, p.kernel, p.padding, p.stride, "strict", where, in_shape)
    ow = _spatial("conv", "width", w, p.kernel, p.padding, p.stride, "strict", where, in_shape)
    out = p.filters * pieces
    return nn.Conv2d(c, out, p.kernel, p.stride, p.padding), (out, oh, ow)


@BUILDERS.register("fc")
def _fc(spec, in_shape, ctx, pieces):
    units = spec.params.units or ctx.num_classes
    return L.FullyConnected(math.prod(in_shape), units * pieces), (units * pieces,)


@BUILDERS.register("pool")
def _pool(spec, in_shape, ctx, pieces):
    where, p = ctx.where, spec.params
    _need_volume(spec, in_shape, where)
    stride = p.stride or p.size
    if 2 * p.padding > p.size:
        raise SpecError(f"{where}: pool padding {p.padding} must be at most half the window {p.size}")
    rounding = p.round or ctx.pool_round
    c, h, w = in_shape
    oh = _spatial("pool", "height", h, p.size, p.padding, stride, rounding, where, in_shape)
    ow = _spatial("pool", "width", w, p.size, p.padding, stride, rounding, where, in_shape)
    cls = nn.MaxPool2d if p.op == "max" else nn.AvgPool2d
    return cls(p.size, stride, p.padding, ceil_mode=rounding == "ceil"), (c, oh, ow)


@BUILDERS.register("gap")
def _gap(spec, in_shape, ctx, pieces):
    _need_volume(spec, in_shape, ctx.where)
    return L.GlobalAvgPool(), (in_shape[0],)


@BUILDERS.register("flatten")
def _flatten(spec, in_shape, ctx, pieces):
    return nn.Flatten(), (math.prod(in_shape),)


@_same_shape("bn")
def _bn(spec, in_shape, ctx):
    p = spec.params
    cls = nn.BatchNorm2d if len(in_shape) == 3 else nn.BatchNorm1d
    module = cls(in_shape[0], eps=p.eps, momentum=p.momentum)
    if p.frozen:  # gamma = 1 (torch's init), not trained: no group, no weight decay (airbench94)
        module.weight.requires_grad_(False)
    return module


@BUILDERS.register("maxout")
def _maxout(spec, in_shape, ctx, pieces):
    k = spec.params.pieces
    if in_shape[0] % k:  # cannot happen after the linear layer was widened; kept as a guard
        raise SpecError(f"{ctx.where}: maxout{k} on {in_shape[0]} features: not divisible by {k}")
    return L.Maxout(k), (in_shape[0] // k, *in_shape[1:])


@_same_shape("dropout")
def _dropout(spec, in_shape, ctx):
    return L.Dropout(spec.params.keep_prob, spec.params.mode or ctx.dropout_mode)


_same_shape("sigmoid")(lambda spec, shape, ctx: nn.Sigmoid())
_same_shape("tanh")(lambda spec, shape, ctx: nn.Tanh())
_same_shape("relu")(lambda spec, shape, ctx: nn.ReLU())
_same_shape("lrelu")(lambda spec, shape, ctx: nn.LeakyReLU(spec.params.slope))
_same_shape("prelu")(lambda spec, shape, ctx: nn.PReLU(shape[0]))  # one slope per channel (He et al. 2015)
_same_shape("elu")(lambda spec, shape, ctx: nn.ELU(spec.params.alpha))
_same_shape("arctan")(lambda spec, shape, ctx: L.Arctan())
_same_shape("softplus")(lambda spec, shape, ctx: nn.Softplus())
_same_shape("gelu")(lambda spec, shape, ctx: nn.GELU())
_same_shape("scale")(lambda spec, shape, ctx: L.Scale(spec.params.factor))
_same_shape("softmax")(lambda spec, shape, ctx: L.SoftmaxOutput())


def _recurrent(spec, in_shape, ctx, pieces):
    """Rows are the time steps, a row's W x C values the features (``layers.Recurrent``)."""
    _need_volume(spec, in_shape, ctx.where)
    c, h, w = in_shape
    p = spec.params
    out = (1, h, p.units) if p.states == "all" else (p.units,)
    return L.Recurrent(spec.kind, c * w, p.units, p.states == "all"), out


BUILDERS.register("lstm")(_recurrent)
BUILDERS.register("gru")(_recurrent)


@BUILDERS.register("res")
def _res(spec, in_shape, ctx, pieces):
    """y = x + body(x): the body is built like a network of its own, named under this layer."""
    here = ctx.where
    body, children, out = build_layers(list(spec.body), in_shape, ctx, f"{ctx.path}.body.", ctx.depth + 1,
                                       f"{here} > layer")
    if out != in_shape:
        raise SpecError(f"{here}: a residual block must keep its input volume {volume(in_shape)} "
                        f"(W x H x D) but its body outputs {volume(out)}")
    return L.Residual(body), out, tuple(children)


def _maxout_pieces(specs: list[LayerSpec], i: int) -> int:
    """Pieces of the maxout that follows linear layer ``i`` (through batch norm), else 1."""
    for nxt in specs[i + 1:]:
        if nxt.kind == "maxout":
            return nxt.params.pieces
        if nxt.kind != "bn":
            return 1
    return 1


def _activation_after(specs: list[LayerSpec], i: int, is_output: bool) -> str | None:
    """The nonlinearity a linear layer's output goes through (skipping bn, pooling, dropout)."""
    for nxt in specs[i + 1:]:
        if nxt.kind in ACTIVATION_KINDS or nxt.kind == "maxout":
            return nxt.token
        if nxt.kind in LINEAR_KINDS or nxt.kind == "res":
            return None
    return "softmax" if is_output else None


def build_layers(specs: list[LayerSpec], in_shape: Shape, ctx: BuildContext, prefix: str = "",
                 depth: int = 0, where: str = "layer") -> tuple[nn.Sequential, list[LayerInfo], Shape]:
    """Build ``specs`` on an input of ``in_shape``; returns the modules, their infos, out shape."""
    modules = nn.Sequential()
    infos: list[LayerInfo] = []
    counts: dict[str, int] = {}
    last_linear = max((i for i, s in enumerate(specs) if s.kind in LINEAR_KINDS), default=-1)
    shape = tuple(in_shape)
    for i, spec in enumerate(specs):
        ctx.where = f"{where} {i + 1} '{spec.token if spec.kind != 'res' else 'res(...)'}'"
        counts[spec.kind] = counts.get(spec.kind, 0) + 1
        name = f"{spec.kind}{counts[spec.kind]}"
        if spec.kind == "maxout":
            before = next((s for s in reversed(specs[:i]) if s.kind != "bn"), None)
            if before is None or before.kind not in LINEAR_KINDS:
                raise SpecError(f"{ctx.where}: maxout must follow a conv or fc layer (batch norm may sit "
                                f"between); that layer's filter/unit count is the number of maxout units")
        ctx.path, ctx.depth = f"{prefix}{name}", depth
        pieces = _maxout_pieces(specs, i) if spec.kind in LINEAR_KINDS else 1
        try:
            module, out, children = Built(*BUILDERS.get(spec.kind)(spec, shape, ctx, pieces))
        except (RuntimeError, TypeError, OverflowError) as exc:  # torch's sizes are 64-bit
            if "overflow" not in str(exc).lower():
                raise
            raise SpecError(f"{ctx.where}: its parameter count on input volume {volume(shape)} (W x H x D) "
                            f"overflows torch's 64-bit sizes; make the layer smaller") from None
        activation = (_activation_after(specs, i, depth == 0 and i == last_linear)
                      if spec.kind in LINEAR_KINDS else None)
        infos.append(LayerInfo(f"{prefix}{name}", spec, module, shape, tuple(out), depth, activation, pieces,
                               list(children)))
        modules.add_module(name, module)
        shape = tuple(out)
    return modules, infos, shape


def flat_infos(infos: list[LayerInfo]) -> list[LayerInfo]:
    """Every layer, res blocks followed by their body's layers."""
    out = []
    for info in infos:
        out.append(info)
        out.extend(flat_infos(info.children))
    return out


#: bytes of one float32 parameter
PARAM_BYTES = 4
#: copies of the parameters training holds: the weights, their gradients and the optimizer's
#: state (one tensor per parameter for momentum; Adam holds two, L-BFGS its history: more)
TRAINING_COPIES = 3


def probe_layers(specs: list[LayerSpec], in_shape: Shape, ctx: BuildContext) -> tuple[list[LayerInfo], Shape]:
    """``specs`` built on torch's meta device: every shape error, the layers' infos (parameter
    counts for :func:`check_parameters_fit`) and the output shape, with no memory allocated."""
    with torch.device("meta"):
        _, infos, out = build_layers(list(specs), tuple(in_shape), ctx)
    return infos, out


def check_parameters_fit(infos: list[LayerInfo], copies: int = 1, why: str = "", free: int | None = None) -> None:
    """SpecError if ``copies`` float32 copies of the parameters of the layers ``infos`` (built on
    the meta device; ``why``: what the copies are) exceed the available memory (``free``: measured
    now when None), naming the largest layer, its parameter count and the memory available."""
    from cnnlab.data.limits import available_memory, human

    counts = [sum(p.numel() for p in info.module.parameters()) for info in infos]
    total = sum(counts)
    need = total * PARAM_BYTES * copies
    free = available_memory() if free is None else free
    if need <= free:
        return
    largest = max(range(len(infos)), key=counts.__getitem__)
    info = infos[largest]
    token = info.spec.token if info.spec.kind != "res" else "res(...)"
    held = "" if copies == 1 else f" x{copies} {why}".rstrip()
    raise SpecError(f"layer {largest + 1} '{token}' has {counts[largest]:,} parameters (on input volume "
                    f"{volume(info.in_shape)}; the network {total:,}): {human(need)} as float32{held}, but "
                    f"{human(free)} of memory is available; make the layer smaller or reduce its input "
                    f"(pooling or a strided conv before it)")


class Network(nn.Sequential):
    """A built spec: ``nn.Sequential`` of named layers (``conv1``, ``relu1``, ``pool1``...)
    that remembers its spec and every layer's input and output volume."""

    def __init__(self, specs: list[LayerSpec], input_shape: Shape, num_classes: int,
                 dropout_mode: str = "inverted", pool_round: str = "strict", arch_name: str | None = None,
                 copies: int = 1):
        """``copies``: float32 copies of the parameters the caller will hold, checked against the
        available memory before anything is allocated (:data:`TRAINING_COPIES` for training)."""
        probe, out = probe_layers(specs, input_shape, BuildContext(num_classes, dropout_mode, pool_round))
        if out != (num_classes,):
            last = specs[-1].token if specs[-1].kind != "res" else "res(...)"
            raise SpecError(
                f"the network must output one score per class, a {num_classes}-vector (1x1x{num_classes}), "
                f"but its last layer '{last}' outputs {volume(out)}; end the spec with 'fc' "
                f"(a bare fc has one unit per class) or 'fc{num_classes}'")
        check_parameters_fit(probe, copies, "for training (the weights, their gradients and the optimizer's state)")
        modules, infos, out = build_layers(list(specs), tuple(input_shape),
                                           BuildContext(num_classes, dropout_mode, pool_round))
        super().__init__(OrderedDict(modules.named_children()))
        self.specs = list(specs)
        self.infos = infos
        self.input_shape = tuple(input_shape)
        self.num_classes = num_classes
        self.arch_name = arch_name

    @property
    def spec(self) -> str:
        from cnnlab.models.spec import format_spec

        return format_spec(self.specs)

    def extra_repr(self) -> str:
        return f"input={volume(self.input_shape)}, classes={self.num_classes}, spec={self.spec!r}"

    def linear_layers(self) -> list[LayerInfo]:
        return [i for i in flat_infos(self.infos) if i.spec.kind in LINEAR_KINDS]
