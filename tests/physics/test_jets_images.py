"""Jet images, features and jet-image preprocessing against plain NumPy references (no Pythia)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.errors import ConfigError
from cnnlab.physics import jetprep
from cnnlab.physics.features import girth
from cnnlab.physics.images import CHANNELS, jet_images, pixel_index, wrap_phi
from cnnlab.physics.settings import JetSettings


def reference_images(jet, d_eta, d_phi, weights, n_jets, pixels, extent):
    """One histogram2d per jet and channel: the textbook way to fill an image."""
    edges = np.linspace(-extent, extent, pixels + 1)
    out = np.zeros((n_jets, len(weights), pixels, pixels))
    dphi = (d_phi + np.pi) % (2 * np.pi) - np.pi
    for j in range(n_jets):
        m = jet == j
        for c, w in enumerate(weights):
            out[j, c] = np.histogram2d(d_eta[m], dphi[m], bins=[edges, edges], weights=w[m])[0]
    return out


def test_images_match_histogram2d_reference():
    rng = np.random.default_rng(0)
    n = 500
    jet = rng.integers(0, 7, n)
    d_eta, d_phi = rng.normal(0, 0.3, n), rng.normal(0, 0.3, n)
    weights = rng.exponential(10, (3, n))
    got = jet_images(jet, d_eta, d_phi, weights, 7, pixels=16, extent=0.5)
    want = reference_images(jet, d_eta, d_phi, weights, 7, 16, 0.5)
    assert got.shape == (7, 3, 16, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-4)


def test_phi_wrap_around_on_a_hand_made_jet():
    # Jet axis just below +pi; constituents just above -pi are close to it (d_phi ~ +0.08),
    # and one just below +pi (d_phi ~ -0.04). Without the wrap they would be ~2 pi away.
    jet_phi = np.pi - 0.02
    phis = np.array([-np.pi + 0.06, np.pi - 0.06, 0.0])
    d_phi = phis - jet_phi
    d_eta = np.array([0.0, 0.1, 0.0])
    e = np.array([5.0, 7.0, 100.0])
    image = jet_images(np.zeros(3, dtype=np.int64), d_eta, d_phi, e[None], 1, pixels=32, extent=0.5)[0, 0]
    assert image.sum() == pytest.approx(12.0)  # the particle at phi = 0 is outside the window
    col_first = int(np.floor((0.08 + 0.5) * 32))   # d_phi = +0.08 after wrapping
    col_second = int(np.floor((-0.04 + 0.5) * 32))  # d_phi = -0.04
    assert image[16, col_first] == pytest.approx(5.0)
    assert image[int(np.floor(0.6 * 32)), col_second] == pytest.approx(7.0)
    np.testing.assert_allclose(wrap_phi(d_phi[:2]), [0.08, -0.04], atol=1e-12)


def test_pixel_edges_are_half_open():
    idx = pixel_index(np.array([-0.5, -0.5 + 1e-9, 0.0, 0.5 - 1e-9, 0.5, -0.51]), 32, 0.5)
    assert idx.tolist() == [0, 0, 16, 31, -1, -1]


def test_channel_sets_seed_and_komiske():
    c = {"e": np.array([10.0, 20.0, 5.0]), "pt": np.array([8.0, 15.0, 4.0]),
         "charge": np.array([1, -1, 0], dtype=np.int8)}
    names, w = CHANNELS.get("seed")(c)
    assert names == ["sum_E", "sum_charge", "sum_abs_charge"]
    np.testing.assert_array_equal(w, [[10, 20, 5], [1, -1, 0], [1, 1, 0]])
    names, w = CHANNELS.get("komiske")(c)
    np.testing.assert_array_equal(w, [[8, 15, 0], [0, 0, 4], [1, 1, 0]])
    with pytest.raises(ConfigError, match="komiske"):
        CHANNELS.get("komiskee")


def test_settings_validation_names_the_problem():
    with pytest.raises(ValueError, match="Did you mean 'seed'"):
        JetSettings(channels="sed")
    with pytest.raises(ValueError, match="jet_pt_max"):
        JetSettings(jet_pt_min=500, jet_pt_max=400)


def test_girth_matches_per_jet_loop():
    rng = np.random.default_rng(1)
    jet = np.repeat(np.arange(4), 10)
    pt, de, dp = rng.exponential(5, 40), rng.normal(0, 0.2, 40), rng.normal(0, 0.2, 40)
    jet_pt = np.array([pt[jet == j].sum() for j in range(4)])
    want = [sum(pt[i] * np.hypot(de[i], dp[i]) for i in np.flatnonzero(jet == j)) / jet_pt[j] for j in range(4)]
    np.testing.assert_allclose(girth(jet, pt, de, dp, jet_pt), want)


def _blob(rng, n=200):
    """Two jets of elongated, off-centre particle clouds."""
    jet = np.repeat([0, 1], n // 2)
    angle = np.where(jet == 0, 0.7, -1.2)
    a, b = rng.normal(0, 0.15, n), rng.normal(0, 0.03, n)
    u = 0.1 + a * np.cos(angle) - b * np.sin(angle)
    v = -0.05 + a * np.sin(angle) + b * np.cos(angle)
    return jet, rng.exponential(3, n), u, v


def test_centre_rotate_flip():
    rng = np.random.default_rng(2)
    jet, pt, u, v = _blob(rng)
    u, v = jetprep.apply_steps(["centre"], jet, pt, u, v)
    for j in (0, 1):
        m = jet == j
        assert np.average(u[m], weights=pt[m]) == pytest.approx(0, abs=1e-12)
        assert np.average(v[m], weights=pt[m]) == pytest.approx(0, abs=1e-12)
    u, v = jetprep.apply_steps(["rotate"], jet, pt, u, v)
    for j in (0, 1):
        m = jet == j
        cov = np.cov(np.stack([u[m], v[m]]), aweights=pt[m])
        assert abs(cov[0, 1]) < 1e-10 * cov[0, 0]  # principal axes are the image axes
        assert cov[0, 0] > cov[1, 1]                 # and the long one is d_eta (vertical)
    u, v = jetprep.apply_steps(["flip"], jet, pt, u, v)
    for j in (0, 1):
        m = jet == j
        assert pt[m][u[m] > 0].sum() >= pt[m][u[m] < 0].sum()
        assert pt[m][v[m] > 0].sum() >= pt[m][v[m] < 0].sum()


def test_normalise_makes_unit_l1_per_channel():
    rng = np.random.default_rng(3)
    images = rng.normal(size=(4, 3, 8, 8)).astype(np.float32)
    images[1, 2] = 0
    out = jetprep.normalise(images)
    sums = np.abs(out).sum(axis=(2, 3))
    np.testing.assert_allclose(np.delete(sums.ravel(), 1 * 3 + 2), 1, rtol=1e-5)
    assert sums[1, 2] == 0
    with pytest.raises(ConfigError, match="rotate"):
        jetprep.apply_steps(["rotat"], *_blob(rng))
