"""Preprocessing fitted on the training split, stored with the run, applied on the device.

``data.normalize`` names one step or a list of steps (see :mod:`cnnlab.data.steps`). Each step
is an ``nn.Module`` whose fitted statistics are buffers, so ``state_dict()`` stores them in
the checkpoint and ``evaluate``/``predict`` apply exactly what training applied: they build
the same pipeline from the config (:func:`cnnlab.data.normalize.build_preprocess`) and load the fitted buffers,
whose shapes may differ from the unfitted placeholders (e.g. PCA keeps a data-dependent
number of components), so loading resizes them.

Steps run on whole batches and accept uint8, float16 or float32 input (the stored dtype);
they return float32. Whitening steps live in :mod:`cnnlab.data.whitening`. Their parameters
are checked once, by the step's class in :mod:`cnnlab.data.stepconfig` (no torch), when the
config is read; the steps trust them.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from cnnlab.data.steps import step_repr
from cnnlab.registry import Registry

PREPROCESSORS: Registry = Registry("preprocessing step")

#: Images per chunk when fitting statistics (bounds the float copy in memory).
FIT_CHUNK = 4096


class FitData:
    """The training images as seen by one step: passed through the steps before it.

    ``chunks()`` streams the whole training split (float32, CPU); ``sample(n)`` is a fixed
    random subset (seed 0), so whitening fitted on ``n`` images does not depend on the order
    of the files (image folders are sorted by class).
    """

    def __init__(self, images: torch.Tensor, before: list[nn.Module]):
        self.images = images
        self.before = before

    def __len__(self) -> int:
        return len(self.images)

    @property
    def dtype(self) -> torch.dtype:
        return self.images.dtype if not self.before else torch.float32

    def _apply(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to("cpu")
        for step in self.before:
            x = step(x)
        return x.float()

    def chunks(self) -> Iterator[torch.Tensor]:
        for chunk in self.images.split(FIT_CHUNK):
            yield self._apply(chunk)

    def sample(self, n: int | None) -> torch.Tensor:
        total = len(self.images)
        if n is None or n >= total:
            return torch.cat(list(self.chunks()))
        index = torch.randperm(total, generator=torch.Generator().manual_seed(0))[:n].sort().values
        return torch.cat([self._apply(self.images[part]) for part in index.split(FIT_CHUNK)])


class Preprocess(nn.Module):
    """Base: ``fit(data: FitData)`` on the training images, then ``forward(batch)``.

    ``pointwise_per_channel``: the step maps each pixel value through a function of its
    channel only, so it commutes with augmentations that only move pixels (the loader then
    augments the stored uint8 images, which is cheaper). ``first_layer``: the step stands for
    the network's fixed first layer (``patch_whiten``, airbench94's whitening convolution), so
    pixel-moving augmentation runs before it, on the images, as it would before that layer.
    ``augment_first`` is either."""

    pointwise_per_channel = False
    first_layer = False

    @property
    def augment_first(self) -> bool:
        return self.pointwise_per_channel or self.first_layer

    def fit(self, data: FitData) -> "Preprocess":
        return self

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        """C x H x W after this step, for an input of ``shape``."""
        return shape

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Fitted buffers may have data-dependent shapes; adopt the stored ones.
        for name, buf in list(self._buffers.items()):
            stored = state_dict.get(prefix + name)
            if buf is not None and stored is not None and stored.shape != buf.shape:
                self._buffers[name] = torch.zeros(stored.shape, dtype=buf.dtype, device=buf.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def extra_repr(self) -> str:
        return ""


def _channel_moments(data: FitData) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over all training pixels (float64 sums)."""
    total = total_sq = None
    count = 0
    for x in data.chunks():
        x = x.double()
        s, sq = x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3))
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean**2).clamp_min(1e-12).sqrt()
    return mean, std


def _pixel_moments(data: FitData) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of every pixel (C x H x W) over the training images."""
    total = total_sq = None
    for x in data.chunks():
        x = x.double()
        total = x.sum(0) if total is None else total + x.sum(0)
        total_sq = (x * x).sum(0) if total_sq is None else total_sq + (x * x).sum(0)
    mean = total / len(data)
    std = (total_sq / len(data) - mean**2).clamp_min(1e-12).sqrt()
    return mean, std


@PREPROCESSORS.register("none")
class Identity(Preprocess):
    """x -> x (as float)."""

    pointwise_per_channel = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float()


@PREPROCESSORS.register("scale")
class Scale(Preprocess):
    """x -> x / 255 for uint8 images (pixel values into [0, 1]); float images pass through."""

    pointwise_per_channel = True

    def __init__(self):
        super().__init__()
        self.register_buffer("divisor", torch.tensor(1.0))

    def fit(self, data: FitData) -> "Scale":
        self.divisor.fill_(255.0 if data.dtype == torch.uint8 else 1.0)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / self.divisor


@PREPROCESSORS.register("standardize")
class Standardize(Preprocess):
    """Per-channel standardisation (seeds/002 "normalisation"; the VGG per-channel mean):

        x'_c = (x_c - mu_c) / sigma_c,   mu_c, sigma_c over all training pixels of channel c.
    """

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 1, 1, 1))
        self.register_buffer("std", torch.ones(1, 1, 1, 1))

    pointwise_per_channel = True

    def fit(self, data: FitData) -> "Standardize":
        mean, std = _channel_moments(data)
        self.mean = mean.float().view(1, -1, 1, 1)
        self.std = std.float().view(1, -1, 1, 1)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        if y is x:  # already float32: leave the caller's tensor alone
            return (x - self.mean) / self.std
        return y.sub_(self.mean).div_(self.std)  # in place on the fresh copy: the hot path


@PREPROCESSORS.register("mean_image")
class MeanImage(Preprocess):
    """Mean-image subtraction (AlexNet; seeds/002): x' = x - mean_i(x_i), a C x H x W mean."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 1, 1, 1))

    def fit(self, data: FitData) -> "MeanImage":
        self.mean = _pixel_moments(data)[0].float().unsqueeze(0)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() - self.mean


@PREPROCESSORS.register("channel_mean")
class ChannelMean(Preprocess):
    """Per-channel mean subtraction (VGG; seeds/002): x'_c = x_c - mu_c."""

    pointwise_per_channel = True

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 1, 1, 1))

    def fit(self, data: FitData) -> "ChannelMean":
        self.mean = _channel_moments(data)[0].float().view(1, -1, 1, 1)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() - self.mean


@PREPROCESSORS.register("std")
class StdNormalize(Preprocess):
    """Divide by the training standard deviation (seeds/002: ``X /= np.std(X, axis=0)``).

    ``per: channel`` -> x'_c = x_c / sigma_c (one sigma per channel over all pixels);
    ``per: pixel``   -> x'_chw = x_chw / sigma_chw (one per input dimension, as in seeds/002).
    Usually placed after ``mean_image`` or ``channel_mean``.
    """

    def __init__(self, per: str = "channel"):
        super().__init__()
        self.per = per
        self.pointwise_per_channel = per == "channel"
        self.register_buffer("std", torch.ones(1, 1, 1, 1))

    def fit(self, data: FitData) -> "StdNormalize":
        if self.per == "channel":
            self.std = _channel_moments(data)[1].float().view(1, -1, 1, 1)
        else:
            self.std = _pixel_moments(data)[1].float().unsqueeze(0)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float() / self.std

    def extra_repr(self) -> str:
        return f"per={self.per!r}"


@PREPROCESSORS.register("gcn")
class GlobalContrastNormalize(Preprocess):
    """Global contrast normalisation, per image (Goodfellow, Bengio & Courville, *Deep
    Learning* eq. 12.3; the maxout paper's CIFAR-10 preprocessing uses s=55):

        X' = s (X - mean(X)) / max(eps, sqrt(lambda + mean((X - mean(X))^2)))

    with means over the image's pixels and channels, or per channel (``per_channel``; seeds/000
    s.2: "for image and each color channel ... subtract the mean"). ``divide: false`` only
    centres (seeds/000's version). No fitting: every image is normalised by its own statistics.
    """

    def __init__(self, scale: float = 1.0, lam: float = 0.0, eps: float = 1e-8,
                 per_channel: bool = False, divide: bool = True):
        super().__init__()
        self.scale, self.lam, self.eps = float(scale), float(lam), float(eps)
        self.per_channel, self.divide = bool(per_channel), bool(divide)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        dims = (2, 3) if self.per_channel else (1, 2, 3)
        centred = x - x.mean(dim=dims, keepdim=True)
        if not self.divide:
            return centred
        contrast = (self.lam + centred.pow(2).mean(dim=dims, keepdim=True)).sqrt()
        return self.scale * centred / contrast.clamp_min(self.eps)

    def extra_repr(self) -> str:
        return (f"scale={self.scale}, lam={self.lam}, eps={self.eps}, "
                f"per_channel={self.per_channel}, divide={self.divide}")


class Pipeline(Preprocess):
    """Steps applied in order; each is fitted on the training images transformed by the
    steps before it."""

    def __init__(self, steps: list[Preprocess], specs: list[dict] | None = None):
        super().__init__()
        self.steps = nn.ModuleList(steps)
        self.specs = specs or []

    def fit(self, images: torch.Tensor) -> "Pipeline":  # type: ignore[override]
        """Fit every step on ``images`` (the training split, any device) in order."""
        import sys

        from tqdm import tqdm

        # Whitening a large training set takes a while: show which step is being fitted.
        steps = tqdm(list(enumerate(self.steps)), desc="fitting preprocessing", unit="step",
                     file=sys.stderr, disable=None if len(images) > 20_000 else True, leave=False)
        for i, step in steps:
            steps.set_postfix_str(type(step).__name__)
            step.fit(FitData(images, list(self.steps[:i])))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step(x)
        return x.float()

    @property
    def pointwise_per_channel(self) -> bool:  # type: ignore[override]
        return all(step.pointwise_per_channel for step in self.steps)

    @property
    def augment_first(self) -> bool:
        return all(step.augment_first for step in self.steps)

    def output_shape(self, shape: tuple[int, int, int]) -> tuple[int, int, int]:
        for step in self.steps:
            shape = step.output_shape(shape)
        return tuple(int(v) for v in shape)  # type: ignore[return-value]

    def __repr__(self) -> str:
        return "Pipeline(" + ", ".join(step_repr(**s) for s in self.specs) + ")"
