"""Per-jet observables used as classic quark/gluon discriminants (Gallicchio & Schwartz,
PRL 107 (2011) 172001; CMS PAS JME-13-002).

- constituent multiplicity  n = number of constituents (gluons radiate more: C_A/C_F = 9/4);
- girth (linear radial moment, "width")  g = sum_i pT_i dR_i / pT_jet, with
  dR_i = sqrt(d_eta_i^2 + d_phi_i^2) to the jet axis;
- jet mass  m = sqrt(E^2 - |p|^2) of the four-vector sum (from FastJet).
Gluon jets are wider, heavier and have more constituents, so each is a gluon-like score.
"""

from __future__ import annotations

import numpy as np

from cnnlab.physics.images import wrap_phi


def girth(jet: np.ndarray, pt: np.ndarray, d_eta: np.ndarray, d_phi: np.ndarray,
          jet_pt: np.ndarray) -> np.ndarray:
    """g_j = sum_{i in j} pT_i * dR_i / pT_j for flat constituent arrays (``jet[i]`` = owner)."""
    dr = np.hypot(d_eta, wrap_phi(d_phi))
    return np.bincount(jet, weights=pt * dr, minlength=len(jet_pt)) / jet_pt


def multiplicity(jet: np.ndarray, n_jets: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Number of constituents per jet (those with ``mask`` true, if given)."""
    return np.bincount(jet if mask is None else jet[mask], minlength=n_jets)
