"""Preprocessing: each step against a NumPy transcription of its source's formula, fitted on
train only, and restored from a state_dict by evaluate/predict."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cnnlab.config import load_config
from cnnlab.data import make_preprocess
from cnnlab.data.normalize import build_preprocess
from cnnlab.errors import ConfigError


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """Correlated uint8 'images' (3 x 6 x 6): a smooth random field plus noise."""
    g = torch.Generator().manual_seed(1)
    base = torch.rand(400, 3, 3, 3, generator=g)
    smooth = torch.nn.functional.interpolate(base, size=(6, 6), mode="bilinear", align_corners=False)
    x = 200 * smooth + 40 * torch.rand(400, 3, 6, 6, generator=g)
    return x.clamp(0, 255).to(torch.uint8)


def fitted(spec, images):
    return build_preprocess(spec).fit(images)


# -- NumPy transcriptions of seeds/001 "Whitening using PCA: Implementation" ------------------
def getWhiteningParameters(x, epsilon=1e-5):  # noqa: N802  (the seed's names)
    xMean = np.mean(x, axis=0)  # noqa: N806
    xBar = x - xMean  # noqa: N806
    sigma = np.dot(xBar.T, xBar) / x.shape[0]
    U, S, V = np.linalg.svd(sigma)  # noqa: N806
    nDims = sum(S > 1e-5)  # noqa: N806
    U = U[:, :nDims]  # noqa: N806
    S = S[:nDims]  # noqa: N806
    return xMean, U, S, epsilon


def whitenData(x, xMean, U, S, epsilon):  # noqa: N802, N803
    xBar = x - xMean  # noqa: N806
    xRot = np.dot(xBar, U)  # noqa: N806
    return 1. / np.sqrt(S + epsilon) * xRot


def test_pca_whitening_matches_seed_code_up_to_component_signs(images):
    x = images.double().numpy().reshape(len(images), -1)
    params = getWhiteningParameters(x)
    expected = whitenData(x, *params)
    pre = fitted([{"pca": {"fit_images": None}}], images)
    got = pre(images).squeeze(-1).squeeze(-1).double().numpy()
    assert got.shape == expected.shape == (400, 108)
    signs = np.sign((got * expected).sum(0))
    np.testing.assert_allclose(got * signs, expected, rtol=1e-3, atol=1e-3)
    # whitened: identity covariance on the training data
    np.testing.assert_allclose(np.cov(got.T, bias=True), np.eye(108), atol=2e-3)


def test_pca_dims_reduces_and_output_shape_follows(images):
    pre = fitted([{"pca": {"dims": 10, "fit_images": None}}], images)
    assert pre(images[:5]).shape == (5, 10, 1, 1)
    assert pre.output_shape((3, 6, 6)) == (10, 1, 1)


def test_zca_matches_seed_code_rotated_back(images):
    x = images.double().numpy().reshape(len(images), -1) / 255
    xMean, U, S, _ = getWhiteningParameters(x)  # noqa: N806
    expected = whitenData(x, xMean, U, S, 0.01) @ U.T
    pre = fitted(["scale", {"zca": {"eps": 0.01, "fit_images": None}}], images)
    got = pre(images).double().numpy().reshape(len(images), -1)
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    assert pre(images).shape == images.shape


def test_zca_fit_images_uses_a_random_subset_not_the_first(images):
    sorted_by_brightness = images[images.float().mean((1, 2, 3)).argsort()]
    a = fitted([{"zca": {"fit_images": 100}}], sorted_by_brightness)
    # the mean of a random quarter is near the full mean; the first quarter's would be far below
    full = sorted_by_brightness.double().flatten(1).mean(0)
    first = sorted_by_brightness[:100].double().flatten(1).mean(0)
    got = a.steps[0].mean.double()
    assert (got - full).abs().mean() < 0.3 * (first - full).abs().mean()


def gcn_numpy(x, s, lam, eps, axes):
    """Deep Learning (Goodfellow, Bengio, Courville) eq. 12.3, per image."""
    mean = x.mean(axis=axes, keepdims=True)
    contrast = np.sqrt(lam + ((x - mean) ** 2).mean(axis=axes, keepdims=True))
    return s * (x - mean) / np.maximum(eps, contrast)


@pytest.mark.parametrize("per_channel", [False, True])
def test_gcn_matches_goodfellow_equation(images, per_channel):
    x = images.double().numpy()
    axes = (2, 3) if per_channel else (1, 2, 3)
    pre = fitted([{"gcn": {"scale": 55, "lam": 10, "eps": 1e-8, "per_channel": per_channel}}], images)
    np.testing.assert_allclose(pre(images).numpy(), gcn_numpy(x, 55, 10, 1e-8, axes), rtol=1e-4, atol=1e-3)


def test_gcn_eps_floors_flat_images():
    flat = torch.full((2, 1, 4, 4), 7, dtype=torch.uint8)
    out = fitted([{"gcn": {"eps": 1.0}}], flat)(flat)
    assert torch.all(out == 0)
    centred = fitted([{"gcn": {"divide": False, "per_channel": True}}], flat)(flat)
    assert torch.all(centred == 0)


def test_mean_image_channel_mean_std_standardize(images):
    x = images.double().numpy()
    np.testing.assert_allclose(fitted("mean_image", images)(images).numpy(), x - x.mean(0), atol=1e-3)
    np.testing.assert_allclose(fitted("channel_mean", images)(images).numpy(),
                               x - x.mean((0, 2, 3), keepdims=True), atol=1e-3)
    centred = x - x.mean(0)
    np.testing.assert_allclose(fitted(["mean_image", {"std": {"per": "pixel"}}], images)(images).numpy(),
                               centred / centred.std(0), rtol=1e-4, atol=1e-4)
    std = fitted(["channel_mean", "std"], images)(images).numpy()
    standardize = fitted("standardize", images)(images).numpy()
    np.testing.assert_allclose(std, standardize, atol=1e-4)
    np.testing.assert_allclose(standardize.mean((0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(standardize.std((0, 2, 3)), 1, atol=1e-4)


def test_scale_only_divides_uint8():
    as_uint8 = torch.full((1, 1, 2, 2), 255, dtype=torch.uint8)
    assert fitted("scale", as_uint8)(as_uint8).max() == 1.0
    as_float = torch.full((1, 1, 2, 2), 0.5)
    assert fitted("scale", as_float)(as_float).max() == 0.5


def airbench_whitening_weights(x, k, eps):
    """airbench94's get_patches / get_whitening_parameters / init_whitening_conv, in NumPy."""
    n, c, h, w = x.shape
    patches = np.stack([x[:, :, i:i + k, j:j + k] for i in range(h - k + 1) for j in range(w - k + 1)], 1)
    flat = patches.reshape(-1, c * k * k)
    values, vectors = np.linalg.eigh(flat.T @ flat / len(flat))
    values, vectors = values[::-1], vectors.T[::-1].reshape(-1, c, k, k)
    scaled = vectors / np.sqrt(values + eps)[:, None, None, None]
    return np.concatenate([scaled, -scaled])


def test_patch_whiten_is_airbench_whitening_conv(images):
    pre = fitted(["standardize", {"patch_whiten": {"size": 2, "eps": 5e-4, "fit_images": None}}], images)
    x = fitted("standardize", images)(images).double().numpy()
    expected = airbench_whitening_weights(x, 2, 5e-4)
    got = pre.steps[1].weight.double().numpy()
    signs = np.sign((got * expected).sum((1, 2, 3)))[:, None, None, None]
    np.testing.assert_allclose(got * signs, expected, rtol=1e-3, atol=1e-3)
    assert pre(images[:2]).shape == (2, 24, 5, 5) and pre.output_shape((3, 6, 6)) == (24, 5, 5)


@pytest.mark.parametrize("spec", [
    "standardize",
    ["scale", {"zca": {"eps": 0.1, "fit_images": 200}}],
    [{"pca": {"fit_images": 300}}],
    ["mean_image", {"std": {"per": "pixel"}}, {"gcn": {"scale": 55, "lam": 10}}],
])
def test_state_dict_restores_the_fitted_pipeline_from_config(images, spec):
    """evaluate/predict: make_preprocess(cfg.data) then load_state_dict reproduces training's."""
    cfg = load_config(None, []).data.model_copy(update={"normalize": spec})
    trained = make_preprocess(cfg, 3).fit(images)
    state = {k: v.clone() for k, v in trained.state_dict().items()}
    restored = make_preprocess(cfg, 3)
    restored.load_state_dict(state)
    torch.testing.assert_close(restored(images[:7]), trained(images[:7]))


def test_fit_uses_train_split_only(tiny_mnist_dir, tmp_path):
    from cnnlab.data import fit_preprocess, load_data

    cfg = load_config(None, ["data.source=idx", f"data.path={tiny_mnist_dir}", "data.val_size=500",
                             "data.normalize=mean_image"])
    splits = load_data(cfg.data)
    pre = fit_preprocess(cfg.data, splits)
    torch.testing.assert_close(pre.steps[0].mean[0], splits.train.images.double().mean(0).float())


@pytest.mark.parametrize("override,message", [
    ("data.normalize=standardise", "Did you mean 'standardize'"),
    ("data.normalize=[{zca: {epsilon: 0.1}}]", "step 'zca' has no parameter 'epsilon'. Did you mean 'eps'"),
    ("data.normalize=[{pca: {dims: 0}}]", "dims must be >= 1"),
    ("data.normalize=[{std: {per: row}}]", "per must be channel or pixel, got 'row'"),
    ("data.normalize=[{zca: 3}]", "parameters of step 'zca' must be a mapping"),
])
def test_bad_preprocessing_config_names_the_key(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert "data.normalize" in str(err.value) and message in str(err.value)
