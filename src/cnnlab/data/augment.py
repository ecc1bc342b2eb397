"""Augmentation on whole batches on the training device (airbench's loader; seeds/004).

Each op maps a float batch ``N x C x H x W`` (already preprocessed) to one of the same shape,
drawing its randomness from torch's global RNG on the batch's device, which the trainer
re-seeds from ``(seed, epoch)`` at every epoch: a run, and a resumed run, see the same
augmented images. Augmentation is applied to the training split only.

``data.augment`` lists the ops in order, e.g. ``[{crop: {padding: 4}}, flip, {cutout: {size: 8}}]``.
Their parameters are checked once, by the op's class in :mod:`cnnlab.data.stepconfig` (no
torch), when the config is read; the ops trust them.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cnnlab.data.stepconfig import validate_steps
from cnnlab.data.steps import build_step, step_repr
from cnnlab.registry import Registry

AUGMENTATIONS: Registry = Registry("augmentation")


class Op:
    """Base: ``__call__(x, index, epoch)``; ``index`` are the examples' positions in the
    dataset (for derandomised ops), ``epoch`` the 0-based epoch.

    ``moves_pixels_only``: the op only rearranges pixels (no new values), so it commutes with
    per-channel pointwise preprocessing and may run on the stored uint8 images (cheaper)."""

    name = "op"
    moves_pixels_only = False

    def __call__(self, x: torch.Tensor, index: torch.Tensor, epoch: int) -> torch.Tensor:
        raise NotImplementedError

    def params(self) -> dict:
        return {k: v for k, v in vars(self).items() if not k.startswith("_") and k != "moves_pixels_only"}

    def __repr__(self) -> str:
        return step_repr(self.name, **self.params())


def register(name: str):
    def add(cls):
        cls.name = name
        return AUGMENTATIONS.register(name)(cls)
    return add


def shift_batch(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int,
                mode: str = "constant", flip: torch.Tensor | None = None) -> torch.Tensor:
    """Translate image i by (dy_i, dx_i) pixels, |d| <= pad, filling with zeros or reflections,
    then mirror it horizontally where ``flip[i]``.

    Equivalent to padding by ``pad`` (``F.pad``'s modes) and cropping the window at offset
    (pad - dy, pad - dx); done as one gather over the flattened images so the whole batch moves
    at once. For ``reflect`` and ``replicate`` the source pixel of every output pixel is
    computed directly, so no padded copy is made.
    """
    n, c, h, w = x.shape
    rows = torch.arange(h, device=x.device) - dy[:, None]
    across = torch.arange(w, device=x.device).expand(n, w)
    if flip is not None:
        across = torch.where(flip[:, None], across.flip(1), across)
    cols = across - dx[:, None]
    if mode == "constant":
        source = F.pad(x, (pad, pad, pad, pad))
        rows, cols, width = rows + pad, cols + pad, w + 2 * pad
    else:
        source, width = x, w
        rows, cols = _border(rows, h, mode), _border(cols, w, mode)
    flat = (rows[:, :, None] * width + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return source.reshape(n, c, -1).gather(2, flat).view(n, c, h, w)


def _border(i: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """Source index of (possibly out-of-range) index ``i``: mirrored without repeating the
    edge (``reflect``: -1 -> 1) or clamped (``replicate``), as ``F.pad`` pads."""
    if mode == "replicate":
        return i.clamp(0, size - 1)
    i = i.abs()
    return torch.where(i > size - 1, 2 * (size - 1) - i, i)


@register("crop")
class RandomCrop(Op):
    """Random crop after padding by ``padding`` pixels (equivalently, a random translation
    by up to ``padding`` pixels in each direction); ``mode`` fills the border: ``reflect``
    or ``constant`` (zeros, i.e. the training mean after centring)."""

    def __init__(self, padding: int = 4, mode: str = "reflect"):
        self.padding, self.mode = int(padding), mode
        self.moves_pixels_only = mode != "constant"

    def __call__(self, x, index, epoch):
        if self.padding == 0:
            return x
        n, p = len(x), self.padding
        dy = torch.randint(-p, p + 1, (n,), device=x.device)
        dx = torch.randint(-p, p + 1, (n,), device=x.device)
        return shift_batch(x, dy, dx, p, self.mode)


@register("flip")
class RandomFlip(Op):
    """Horizontal flip of each image with probability ``p``."""

    moves_pixels_only = True

    def __init__(self, p: float = 0.5):
        self.p = float(p)

    def __call__(self, x, index, epoch):
        mask = torch.rand(len(x), device=x.device) < self.p
        return torch.where(mask[:, None, None, None], x.flip(3), x)


@register("alternating_flip")
class AlternatingFlip(Op):
    """airbench's derandomised flip: each image gets a fixed pseudo-random parity b_i (a hash
    of its index and ``seed``) and is flipped in epoch e iff b_i XOR (e mod 2). Every image is
    seen both ways in every two consecutive epochs, which random flipping does not ensure."""

    moves_pixels_only = True

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def __call__(self, x, index, epoch):
        # Knuth's multiplicative hash; bit 16 is well mixed for consecutive indices.
        parity = ((index.long() * 2654435761 + self.seed * 40503) >> 16) & 1
        mask = (parity ^ (epoch % 2)).bool()
        return torch.where(mask[:, None, None, None], x.flip(3), x)


@register("translate")
class RandomTranslate(Op):
    """Random translation by up to ``pixels`` in x and y, zero fill (= ``crop`` with
    ``mode: constant``)."""

    def __init__(self, pixels: int = 2):
        self.pixels = int(pixels)

    def __call__(self, x, index, epoch):
        return RandomCrop(self.pixels, "constant")(x, index, epoch)


@register("one_pixel_shift")
class OnePixelShift(Op):
    """Nielsen's expansion (seeds/004) drawn at random: each image is left as is or moved by
    one pixel up, down, left or right (zero fill), each with probability 1/5. See also
    ``data.expand_shifts`` for the explicit 5x expanded training set."""

    def __call__(self, x, index, epoch):
        moves = torch.tensor([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], device=x.device)
        choice = moves[torch.randint(0, 5, (len(x),), device=x.device)]
        return shift_batch(x, choice[:, 0], choice[:, 1], 1, "constant")


def _affine(x: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(matrices, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@register("rotate_scale")
class RandomRotateScale(Op):
    """Small random rotations (uniform in +-``degrees``) and zooms (uniform in
    [1 - ``scale``, 1 + ``scale``]) about the image centre, bilinear, zero fill (seeds/004:
    "shifted/rotated/scaled images")."""

    def __init__(self, degrees: float = 10.0, scale: float = 0.1):
        self.degrees, self.scale = float(degrees), float(scale)

    def __call__(self, x, index, epoch):
        n = len(x)
        angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(self.degrees)
        zoom = 1 + (torch.rand(n, device=x.device) * 2 - 1) * self.scale
        return self.transform(x, angle, zoom)

    @staticmethod
    def transform(x: torch.Tensor, angle: torch.Tensor, zoom: torch.Tensor) -> torch.Tensor:
        """Rotate image i by ``angle[i]`` radians and zoom by ``zoom[i]`` about its centre."""
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # grid maps output -> input
        zero = torch.zeros_like(cos)
        matrices = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        return _affine(x, matrices.to(x.dtype))


def gaussian_kernel(sigma: float, device) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    k = torch.exp(-t**2 / (2 * sigma**2))
    return k / k.sum()


@register("elastic")
class ElasticDistortion(Op):
    """Elastic distortion (Simard, Steinkraus & Platt 2003, s.2): a random displacement field
    u, v ~ U(-1, 1) per pixel, smoothed by a Gaussian of std ``sigma`` pixels and scaled by
    ``alpha`` pixels, moves every pixel (bilinear interpolation). Simard used sigma = 4,
    alpha = 34 on MNIST; ``p`` is the fraction of images distorted."""

    def __init__(self, alpha: float = 34.0, sigma: float = 4.0, p: float = 1.0):
        self.alpha, self.sigma, self.p = float(alpha), float(sigma), float(p)

    def __call__(self, x, index, epoch):
        n, _, h, w = x.shape
        field = torch.rand(n, 2, h, w, device=x.device) * 2 - 1
        k = gaussian_kernel(self.sigma, x.device)
        r = len(k) // 2
        # Separable Gaussian smoothing of both displacement components at once.
        field = F.conv2d(F.pad(field, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).expand(2, 1, 1, -1), groups=2)
        field = F.conv2d(F.pad(field, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(2, 1, -1, 1), groups=2)
        field = field * self.alpha * (torch.rand(n, device=x.device) < self.p)[:, None, None, None]
        ys = torch.linspace(-1, 1, h, device=x.device)
        xs = torch.linspace(-1, 1, w, device=x.device)
        base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), -1)  # H x W x (x, y)
        # pixels -> normalised coordinates (align_corners=True: 2 / (size - 1) per pixel)
        offset = torch.stack([field[:, 0] * 2 / max(w - 1, 1), field[:, 1] * 2 / max(h - 1, 1)], -1)
        grid = (base + offset).to(x.dtype)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


@register("cutout")
class Cutout(Op):
    """Cutout (DeVries & Taylor 2017): zero a ``size x size`` square at a uniformly random
    centre (it may stick out of the image) in a fraction ``p`` of the images. After
    centring, zero is the training mean."""

    def __init__(self, size: int = 8, p: float = 1.0):
        self.size, self.p = int(size), float(p)

    def __call__(self, x, index, epoch):
        n, _, h, w = x.shape
        cy = torch.randint(0, h, (n, 1), device=x.device)
        cx = torch.randint(0, w, (n, 1), device=x.device)
        top, left = cy - self.size // 2, cx - self.size // 2
        rows = torch.arange(h, device=x.device)[None]
        cols = torch.arange(w, device=x.device)[None]
        in_rows = (rows >= top) & (rows < top + self.size)
        in_cols = (cols >= left) & (cols < left + self.size)
        hole = in_rows[:, :, None] & in_cols[:, None, :]
        hole &= (torch.rand(n, device=x.device) < self.p)[:, None, None]
        return x.masked_fill(hole[:, None], 0.0)


class _CropThenFlip(Op):
    """``crop`` followed by ``flip`` in one gather: the same random draws in the same order,
    so the same images, with one pass over the batch fewer (the common CIFAR pipeline)."""

    def __init__(self, crop: RandomCrop, flip: RandomFlip):
        self.crop, self.flip = crop, flip
        self.moves_pixels_only = crop.moves_pixels_only

    def __call__(self, x, index, epoch):
        n, p = len(x), self.crop.padding
        dy = torch.randint(-p, p + 1, (n,), device=x.device)
        dx = torch.randint(-p, p + 1, (n,), device=x.device)
        mask = torch.rand(n, device=x.device) < self.flip.p
        return shift_batch(x, dy, dx, p, self.crop.mode, flip=mask)


def _fuse(ops: list[Op]) -> list[Op]:
    fused: list[Op] = []
    for op in ops:
        previous = fused[-1] if fused else None
        if isinstance(op, RandomFlip) and isinstance(previous, RandomCrop) and previous.padding > 0:
            fused[-1] = _CropThenFlip(previous, op)
        else:
            fused.append(op)
    return fused


class Augment:
    """The ops of ``data.augment`` in order, applied to a whole training batch."""

    def __init__(self, ops: list[Op]):
        self.ops = ops
        self._run = _fuse(ops)

    def __call__(self, x: torch.Tensor, index: torch.Tensor | None = None, epoch: int = 0) -> torch.Tensor:
        if index is None:
            index = torch.arange(len(x), device=x.device)
        for op in self._run:
            x = op(x, index, epoch)
        return x

    def __bool__(self) -> bool:
        return bool(self.ops)

    @property
    def moves_pixels_only(self) -> bool:
        return all(op.moves_pixels_only for op in self.ops)

    def __repr__(self) -> str:
        return "Augment(" + ", ".join(map(repr, self.ops)) + ")"


def build_augment(spec) -> Augment:
    """The ``data.augment`` list as an :class:`Augment` (empty list: no augmentation); ValueError
    naming the key and the op for a bad one."""
    specs = validate_steps(spec, "data.augment") if spec else []
    return Augment([build_step(s, AUGMENTATIONS) for s in specs])


def expand_one_pixel_shifts(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nielsen's expanded training set (seeds/004): every image plus its copies displaced by
    one pixel up, down, left and right (zero fill) -- 5x the examples."""
    copies = [images]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        shifted = torch.zeros_like(images)
        h, w = images.shape[2:]
        shifted[:, :, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            images[:, :, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        copies.append(shifted)
    return torch.cat(copies), labels.repeat(5)
