"""Jet images: constituents binned in (d_eta, d_phi) around the jet axis, one channel per
quantity (seeds/000 s.3.1; Cogan et al. 2015; Komiske, Metodiev, Schwartz 2017).

For jet j with axis (eta_j, phi_j) and constituent i,

    d_eta_i = eta_i - eta_j,      d_phi_i = wrap(phi_i - phi_j) in [-pi, pi),

and pixel (a, b) of channel c holds  I[c, a, b] = sum_{i in pixel (a, b)} w_c(i), with
a = floor((d_eta + extent) / (2 extent) * P) (rows: eta), b likewise for d_phi (columns: phi).
Pixels are half-open, [-extent, extent); constituents outside are not drawn.
The wrap of d_phi matters for jets near phi = +-pi, whose constituents straddle the cut.
"""

from __future__ import annotations

import numpy as np

from cnnlab.registry import Registry

#: name -> function(constituents) -> (channel names, weights C x n)
CHANNELS: Registry = Registry("jet image channel set")


@CHANNELS.register("seed")
def seed_channels(c: dict) -> tuple[list[str], np.ndarray]:
    """seeds/000 s.3.1: sum of energies, sum of charges, sum of absolute charges."""
    charge = c["charge"].astype(np.float64)
    return ["sum_E", "sum_charge", "sum_abs_charge"], np.stack([c["e"], charge, np.abs(charge)])


@CHANNELS.register("komiske")
def komiske_channels(c: dict) -> tuple[list[str], np.ndarray]:
    """Komiske, Metodiev, Schwartz, JHEP 01 (2017) 110: charged pT, neutral pT, charged count."""
    charged = (c["charge"] != 0).astype(np.float64)
    return ["charged_pT", "neutral_pT", "charged_multiplicity"], np.stack(
        [c["pt"] * charged, c["pt"] * (1.0 - charged), charged])


def channel_names(name: str) -> list[str]:
    empty = {k: np.zeros(0) for k in ("e", "pt", "charge")}
    return CHANNELS.get(name)(empty)[0]


def wrap_phi(dphi: np.ndarray) -> np.ndarray:
    """Map angle differences into [-pi, pi)."""
    return (np.asarray(dphi) + np.pi) % (2 * np.pi) - np.pi


def pixel_index(delta: np.ndarray, pixels: int, extent: float) -> np.ndarray:
    """Pixel of each offset along one axis; -1 where outside [-extent, extent)."""
    index = np.floor((np.asarray(delta, dtype=np.float64) + extent) * (pixels / (2 * extent)))
    index = index.astype(np.int64)
    return np.where((index >= 0) & (index < pixels), index, -1)


def jet_images(jet: np.ndarray, d_eta: np.ndarray, d_phi: np.ndarray, weights: np.ndarray,
               n_jets: int, pixels: int = 32, extent: float = 0.5) -> np.ndarray:
    """Fill ``n_jets x C x P x P`` images from flat constituent arrays in one ``bincount``.

    ``jet[i]`` is the jet (0..n_jets-1) of constituent i, ``d_eta``/``d_phi`` its offsets from
    the jet axis (d_phi already wrapped), ``weights[c, i]`` its value in channel c.
    """
    weights = np.atleast_2d(weights)
    n_channels = weights.shape[0]
    a = pixel_index(d_eta, pixels, extent)
    b = pixel_index(wrap_phi(d_phi), pixels, extent)
    inside = (a >= 0) & (b >= 0)
    jet, a, b, w = np.asarray(jet)[inside], a[inside], b[inside], weights[:, inside]
    pixel = a * pixels + b
    size = n_jets * n_channels * pixels * pixels
    flat = np.zeros(size, dtype=np.float64)
    for c in range(n_channels):  # C is 3: a loop over channels, vectorised over constituents
        index = (jet * n_channels + c) * pixels * pixels + pixel
        flat += np.bincount(index, weights=w[c], minlength=size)
    return flat.reshape(n_jets, n_channels, pixels, pixels).astype(np.float32)
