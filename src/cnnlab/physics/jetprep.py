"""Jet-image preprocessing from the jet-image literature, applied to constituents before
pixelisation (exact, unlike rotating a pixelised image):

1. centre   (Cogan et al., JHEP 02 (2015) 118): translate so the pT-weighted centroid
            (eta_c, phi_c) = sum_i pT_i (d_eta_i, d_phi_i) / sum_i pT_i is the image centre;
2. rotate   (de Oliveira et al., JHEP 07 (2016) 069): rotate by -theta, where the principal
            axis of the pT-weighted second moments S = sum_i pT_i x_i x_i^T has angle
            theta = 1/2 atan2(2 S_eta,phi, S_eta,eta - S_phi,phi) from the d_eta axis, so that
            this axis lies along d_eta (the image's vertical: rows are eta);
3. flip     (Komiske et al., JHEP 01 (2017) 110): reflect each axis so that the half with
            positive coordinate carries at least as much pT as the negative half (the hardest
            region ends in a fixed quadrant);
4. normalise: divide each image channel by its total |intensity|, I_c <- I_c / sum |I_c|, so
            the network sees shapes, not the jet's energy scale.

Steps 1-3 are registered by name (``JET_PREP``); a pipeline is a list of names
(``data.jet_prep``), with ``normalise`` last because it acts on the pixelised image.
"""

from __future__ import annotations

import numpy as np

from cnnlab.registry import Registry

#: name -> function(jet, pt, u, v) -> (u, v), u = d_eta, v = d_phi (wrapped)
JET_PREP: Registry = Registry("jet-image preprocessing step")

#: the steps of the literature, in their order
ALIGN = ("centre", "rotate", "flip")


def _per_jet(jet: np.ndarray, values: np.ndarray, n_jets: int) -> np.ndarray:
    return np.bincount(jet, weights=values, minlength=n_jets)


@JET_PREP.register("centre", "center")
def centre(jet, pt, u, v):
    """Move the pT-weighted centroid of each jet to (0, 0)."""
    n = int(jet.max()) + 1 if len(jet) else 0
    total = np.maximum(_per_jet(jet, pt, n), 1e-12)
    return u - (_per_jet(jet, pt * u, n) / total)[jet], v - (_per_jet(jet, pt * v, n) / total)[jet]


@JET_PREP.register("rotate")
def rotate(jet, pt, u, v):
    """Rotate each jet so its pT-weighted principal axis lies along u (d_eta)."""
    n = int(jet.max()) + 1 if len(jet) else 0
    s_uu, s_vv, s_uv = (_per_jet(jet, pt * a * b, n) for a, b in ((u, u), (v, v), (u, v)))
    theta = 0.5 * np.arctan2(2 * s_uv, s_uu - s_vv)[jet]
    cos, sin = np.cos(theta), np.sin(theta)
    return cos * u + sin * v, -sin * u + cos * v


@JET_PREP.register("flip")
def flip(jet, pt, u, v):
    """Reflect each axis so the positive half holds at least half of the jet's pT."""
    n = int(jet.max()) + 1 if len(jet) else 0
    sign_u = np.where(_per_jet(jet, pt * np.sign(u), n) < 0, -1.0, 1.0)[jet]
    sign_v = np.where(_per_jet(jet, pt * np.sign(v), n) < 0, -1.0, 1.0)[jet]
    return u * sign_u, v * sign_v


def apply_steps(steps, jet, pt, u, v):
    """Run the named coordinate steps in order."""
    for name in steps:
        u, v = JET_PREP.get(name)(jet, pt, u, v)
    return u, v


#: the image step (after pixelisation), under its spellings
IMAGE_STEPS = ("normalise", "normalize")


def parse_steps(names) -> tuple[tuple[str, ...], bool]:
    """``data.jet_prep`` -> (coordinate steps in order, normalise?). ValueError names the step."""
    names = list(names)
    for position, name in enumerate(names):
        if name in IMAGE_STEPS:
            if position != len(names) - 1:
                raise ValueError(f"'{name}' acts on the pixelised image, so it must be the last "
                                 f"jet_prep step (got {names})")
        elif name not in JET_PREP:
            try:
                JET_PREP.validate(name)
            except ValueError as exc:
                raise ValueError(f"{exc}; and normalise, as the last step") from None
    normalised = bool(names) and names[-1] in IMAGE_STEPS
    return tuple(names[:-1] if normalised else names), normalised


def normalise(images: np.ndarray) -> np.ndarray:
    """I_c <- I_c / sum |I_c| per image and channel (empty channels stay zero)."""
    total = np.abs(images).sum(axis=(2, 3), keepdims=True)
    return np.divide(images, total, out=np.zeros_like(images), where=total > 0)
