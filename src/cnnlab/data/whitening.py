"""Whitening fitted on training images: PCA (with dimensionality reduction), ZCA, and
airbench's fixed whitening convolution on patches.

seeds/001 ("Whitening using PCA: Implementation") gives the reference code, transcribed here
for flattened images x (N x D, D = C*H*W)::

    xMean = mean(x, axis=0); xBar = x - xMean
    sigma = xBar.T @ xBar / N;  U, S, V = svd(sigma)
    nDims = sum(S > 1e-5); U = U[:, :nDims]; S = S[:nDims]
    xPCAwhite = (xBar @ U) / sqrt(S + eps)             # PCA whitening, nDims outputs
    xZCAwhite = xPCAwhite @ U.T                        # ZCA: rotate back to pixel space

sigma is symmetric positive semi-definite, so its SVD is its eigendecomposition; we use
``eigh`` in float64 (eigenvector signs are arbitrary: PCA outputs match the seed's up to the
sign of each component; ZCA is sign-free).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnnlab.data.preprocess import PREPROCESSORS, FitData, Preprocess


def _eigen(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mean, eigenvalues (descending) and eigenvectors (columns) of the covariance of rows."""
    x = flat.double()
    mean = x.mean(0)
    centred = x - mean
    sigma = centred.T @ centred / len(x)
    values, vectors = torch.linalg.eigh(sigma)
    return mean, values.flip(0).clamp_min(0), vectors.flip(1)


@PREPROCESSORS.register("pca")
class PCAWhiten(Preprocess):
    """PCA whitening with dimensionality reduction (seeds/001):

        x' = U_k^T (x - mu) / sqrt(S_k + eps)

    keeping ``dims`` components (default: those with eigenvalue > ``threshold``, the seed's
    ``sum(S > 1e-5)``). The output is a ``k x 1 x 1`` vector per image: for fully connected
    networks, not for convolutions. Fitted on ``fit_images`` random training images.
    """

    def __init__(self, dims: int | None = None, eps: float = 1e-5, threshold: float = 1e-5,
                 fit_images: int | None = 10_000):
        super().__init__()
        self.dims, self.eps, self.threshold = dims, float(eps), float(threshold)
        self.fit_images = fit_images
        self.register_buffer("mean", torch.zeros(1))
        self.register_buffer("projection", torch.zeros(1, dims or 1))  # U_k / sqrt(S_k + eps)

    def fit(self, data: FitData) -> "PCAWhiten":
        flat = data.sample(self.fit_images).flatten(1)
        mean, values, vectors = _eigen(flat)
        k = self.dims if self.dims is not None else int((values > self.threshold).sum())
        k = max(1, min(k, len(values)))
        self.mean = mean.float()
        self.projection = (vectors[:, :k] / (values[:k] + self.eps).sqrt()).float()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = (x.float().flatten(1) - self.mean) @ self.projection
        return out[:, :, None, None]

    def output_shape(self, shape):
        return (self.projection.shape[1], 1, 1)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, eps={self.eps}, fit_images={self.fit_images}"


@PREPROCESSORS.register("zca")
class ZCAWhiten(Preprocess):
    """ZCA whitening (seeds/001's PCA whitening rotated back into pixel space):

        x' = U diag(1 / sqrt(S + eps)) U^T (x - mu)

    The output keeps the image shape. ``eps`` trades decorrelation against noise
    amplification (seeds/004): 1e-5 is the seed's value for unit-scale data; 0.01-0.1 suit
    CIFAR-10 scaled to [0, 1]. Fitted on ``fit_images`` random training images.
    """

    def __init__(self, eps: float = 1e-5, fit_images: int | None = 10_000):
        super().__init__()
        self.eps = float(eps)
        self.fit_images = fit_images
        self.register_buffer("mean", torch.zeros(1))
        self.register_buffer("matrix", torch.eye(1))

    def fit(self, data: FitData) -> "ZCAWhiten":
        flat = data.sample(self.fit_images).flatten(1)
        mean, values, vectors = _eigen(flat)
        self.mean = mean.float()
        self.matrix = ((vectors / (values + self.eps).sqrt()) @ vectors.T).float()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = (x.float().flatten(1) - self.mean) @ self.matrix  # matrix is symmetric
        return flat.view(x.shape)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, fit_images={self.fit_images}"


@PREPROCESSORS.register("patch_whiten")
class PatchWhiten(Preprocess):
    """airbench's whitening convolution, fixed: the eigenvectors of the covariance of all
    ``size x size`` patches (no centring, as in airbench), scaled by 1/sqrt(lambda + eps),
    with their negatives (so a following ReLU keeps both signs):

        W = [V / sqrt(lambda + eps); -V / sqrt(lambda + eps)],   x' = conv2d(x, W)

    Output: 2*C*size^2 channels of (H - size + 1) x (W - size + 1). Put it after
    ``standardize``; fitted on the patches of ``fit_images`` random training images. It is
    the network's first layer held fixed (``first_layer``): augmentations that move pixels run
    before it, on the images, as in airbench94.
    """

    first_layer = True

    def __init__(self, size: int = 2, eps: float = 5e-4, fit_images: int | None = 5_000):
        super().__init__()
        self.size, self.eps = int(size), float(eps)
        self.fit_images = fit_images
        self.register_buffer("weight", torch.zeros(1, 1, size, size))

    def fit(self, data: FitData) -> "PatchWhiten":
        x = data.sample(self.fit_images)
        c, k = x.shape[1], self.size
        patches = x.unfold(2, k, 1).unfold(3, k, 1).transpose(1, 3).reshape(-1, c * k * k).double()
        values, vectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        values, vectors = values.flip(0), vectors.flip(1)
        scaled = (vectors.T / (values.clamp_min(0) + self.eps).sqrt()[:, None]).reshape(-1, c, k, k)
        self.weight = torch.cat([scaled, -scaled]).float()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x.float(), self.weight)

    def output_shape(self, shape):
        c, h, w = shape
        return (2 * c * self.size**2, h - self.size + 1, w - self.size + 1)

    def extra_repr(self) -> str:
        return f"size={self.size}, eps={self.eps}, fit_images={self.fit_images}"
