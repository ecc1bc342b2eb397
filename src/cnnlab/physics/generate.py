"""Generate one block of events: Pythia 8 -> visible final particles -> FastJet anti-kT ->
jets in the pT/eta window -> parton matching -> images and per-jet features.

A *block* is ``settings.block_events`` calls of ``pythia.next()`` with the random stream
seeded by ``block_seed(seed, block)``. Blocks are the unit of seeding, of parallel work and of
resume: block b of seed S holds the same jets whichever worker made it and whenever.

Labelling (issue 7): a jet is matched to the nearest hard-process outgoing parton (Pythia
status -23) within Delta R < ``match_dr``; quark if |id| <= 5, gluon if id = 21; jets without a
match (or matched to anything else) are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.physics.deps import require, stdout_to_stderr
from cnnlab.physics.features import girth, multiplicity
from cnnlab.physics.images import CHANNELS, jet_images, wrap_phi
from cnnlab.physics.settings import JetSettings

#: Pythia accepts seeds 1..900,000,000.
_PYTHIA_SEED_RANGE = 900_000_000
#: block index used to derive the seed of Pythia's initialisation (never a real block)
_INIT_BLOCK = 2**32 - 1

JET_FIELDS = ("pt", "eta", "phi", "mass", "multiplicity", "n_charged", "girth", "parton_id",
              "label", "block", "event")
CONSTITUENT_FIELDS = ("pt", "eta", "phi", "e", "charge", "pid")
COUNTERS = ("events", "failed_events", "jets_in_window", "unmatched", "quark", "gluon")


def block_seed(seed: int, block: int) -> int:
    """Independent Pythia seed of ``block`` for a run with ``seed`` (NumPy SeedSequence hash)."""
    state = np.random.SeedSequence([int(seed), int(block)]).generate_state(1, dtype=np.uint32)[0]
    return int(state) % _PYTHIA_SEED_RANGE + 1


@dataclass
class Block:
    """The jets of one block, as flat arrays, plus its counters."""

    index: int
    seed: int
    jets: dict[str, np.ndarray]
    constituents: dict[str, np.ndarray]
    images: np.ndarray
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.jets["pt"])


class JetGenerator:
    """A Pythia instance initialised once; ``block(i)`` re-seeds its random stream per block."""

    def __init__(self, settings: JetSettings, seed: int):
        self.settings = settings
        self.seed = seed
        pythia8 = require("pythia8mc")
        self.fastjet = require("fastjet")
        self.pythia = pythia8.Pythia("", False)  # False: no banner
        for line in settings.pythia_lines() + [f"Random:seed = {block_seed(seed, _INIT_BLOCK)}"]:
            if not self.pythia.readString(line):
                from cnnlab.errors import ConfigError
                raise ConfigError(f"Pythia rejected the setting '{line}'")
        if not self.pythia.init():
            raise RuntimeError("Pythia failed to initialise with settings: "
                               + "; ".join(settings.pythia_lines()))
        self.jet_def = self.fastjet.JetDefinition(self.fastjet.antikt_algorithm, settings.radius)
        with stdout_to_stderr():  # FastJet's banner, printed once per process
            self.fastjet.ClusterSequence([self.fastjet.PseudoJet(1.0, 0.0, 0.0, 2.0)], self.jet_def)

    def particles(self) -> np.ndarray:
        """Visible final-state particles of the current event: rows (px, py, pz, e, charge, pid).

        Only |eta| < eta_max + 2R can reach a jet with |eta| < eta_max, so the rest is skipped.
        """
        eta_cut = self.settings.eta_max + 2 * self.settings.radius
        rows = [(p.px(), p.py(), p.pz(), p.e(), p.charge(), p.id()) for p in self.pythia.event
                if p.isFinal() and p.isVisible() and abs(p.eta()) < eta_cut]
        return np.array(rows, dtype=np.float64).reshape(-1, 6)

    def hard_partons(self) -> list[tuple[int, float, float]]:
        """(id, eta, phi) of the outgoing partons of the hardest process (status -23)."""
        event = self.pythia.event
        return [(event[i].id(), event[i].eta(), event[i].phi())
                for i in range(1, min(event.size(), 12)) if event[i].status() == -23]

    def block(self, index: int) -> Block:
        s = self.settings
        seed = block_seed(self.seed, index)
        self.pythia.rndm.init(seed)
        counts = dict.fromkeys(COUNTERS, 0)
        jets: dict[str, list] = {k: [] for k in JET_FIELDS}
        parts: list[np.ndarray] = []
        owner: list[np.ndarray] = []
        fj = self.fastjet
        for event in range(s.block_events):
            counts["events"] += 1
            if not self.pythia.next():
                counts["failed_events"] += 1
                continue
            particles = self.particles()
            if len(particles) == 0:
                continue
            pseudo = []
            for k, (px, py, pz, e) in enumerate(particles[:, :4].tolist()):
                pj = fj.PseudoJet(px, py, pz, e)
                pj.set_user_index(k)
                pseudo.append(pj)
            cluster = fj.ClusterSequence(pseudo, self.jet_def)
            partons = None
            for jet in cluster.inclusive_jets(s.jet_pt_min):
                pt, eta = jet.pt(), jet.eta()
                if not (pt < s.jet_pt_max and abs(eta) < s.eta_max):
                    continue
                counts["jets_in_window"] += 1
                phi = jet.phi_std()
                partons = self.hard_partons() if partons is None else partons
                parton_id = match_parton(eta, phi, partons, s.match_dr)
                label = parton_label(parton_id)
                if label is None:
                    counts["unmatched"] += 1
                    continue
                counts["quark" if label == 1 else "gluon"] += 1
                members = np.array([c.user_index() for c in jet.constituents()], dtype=np.int64)
                n = len(jets["pt"])
                parts.append(particles[members])
                owner.append(np.full(len(members), n, dtype=np.int64))
                for key, value in (("pt", pt), ("eta", eta), ("phi", phi), ("mass", jet.m()),
                                   ("parton_id", parton_id), ("label", label), ("block", index),
                                   ("event", event)):
                    jets[key].append(value)
        return assemble_block(index, seed, jets, parts, owner, counts, s)


def match_parton(eta: float, phi: float, partons, max_dr: float) -> int:
    """Id of the nearest parton within ``max_dr`` of (eta, phi); 0 if none."""
    best, best_dr = 0, max_dr
    for pid, p_eta, p_phi in partons:
        dr = float(np.hypot(eta - p_eta, wrap_phi(phi - p_phi)))
        if dr < best_dr:
            best, best_dr = pid, dr
    return best


def parton_label(parton_id: int) -> int | None:
    """1 = quark (|id| <= 5), 0 = gluon (21), None = unmatched or other."""
    if parton_id == 21:
        return 0
    if 1 <= abs(parton_id) <= 5:
        return 1
    return None


def assemble_block(index, seed, jets, parts, owner, counts, s: JetSettings) -> Block:
    """Flat constituent arrays -> images and features, vectorised over the whole block."""
    n_jets = len(jets["pt"])
    rows = np.concatenate(parts) if parts else np.zeros((0, 6))
    jet = np.concatenate(owner) if owner else np.zeros(0, dtype=np.int64)
    px, py, pz, e = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    pt = np.hypot(px, py)
    constituents = {"pt": pt, "eta": np.arcsinh(pz / np.maximum(pt, 1e-12)),
                    "phi": np.arctan2(py, px), "e": e,
                    "charge": np.rint(rows[:, 4]).astype(np.int8), "pid": rows[:, 5].astype(np.int32)}
    out = {k: np.asarray(v) for k, v in jets.items()}
    out = {"pt": out["pt"].astype(np.float64), "eta": out["eta"].astype(np.float64),
           "phi": out["phi"].astype(np.float64), "mass": out["mass"].astype(np.float64),
           "parton_id": out["parton_id"].astype(np.int32), "label": out["label"].astype(np.int8),
           "block": out["block"].astype(np.int64), "event": out["event"].astype(np.int64)}
    d_eta = constituents["eta"] - out["eta"][jet] if n_jets else np.zeros(0)
    d_phi = wrap_phi(constituents["phi"] - out["phi"][jet]) if n_jets else np.zeros(0)
    out["multiplicity"] = multiplicity(jet, n_jets).astype(np.int32)
    out["n_charged"] = multiplicity(jet, n_jets, constituents["charge"] != 0).astype(np.int32)
    out["girth"] = girth(jet, pt, d_eta, d_phi, out["pt"]) if n_jets else np.zeros(0)
    _, weights = CHANNELS.get(s.channels)(constituents)
    images = jet_images(jet, d_eta, d_phi, weights, n_jets, s.pixels, s.extent)
    return Block(index, seed, out, constituents, images, counts)
