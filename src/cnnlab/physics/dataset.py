"""The ``jets`` dataset sources: a file from ``cnnlab data jets`` -> :class:`DatasetSplits`.

- **split by block**: a fraction ``data.test_split`` of the generator blocks is the test set
  (block b is test if frac((b + 1) * 0.618...) < test_split: a low-discrepancy sequence), so both
  jets of an event stay on one side and the test set does not change when the file is
  appended to;
- **class balance** (seeds/000 s.3.1: "the same number of quark jets and gluon jets"): the
  larger class is subsampled (fixed seed) to the size of the smaller in the test split, and in
  the training split too unless ``data.balance`` is ``sample`` or ``weight`` (then every
  training jet is kept and the loader or the loss does the balancing);
- **extras**: ``splits.extras["test"]`` holds the per-jet features (pt, eta, phi, mass,
  multiplicity, n_charged, girth, parton_id) of the test jets, row for row, for the
  physics metrics of ``cnnlab evaluate``; ``extras["channels"]`` names the image channels.

Sources (``data.source``): ``jets`` uses the stored images; ``jets-aligned`` re-pixelises
the stored constituents after centring, rotation and flipping; ``jets-aligned-norm`` also
normalises each image channel to unit sum (which hides the multiplicity that the sum |charge|
channel otherwise carries) (see :mod:`cnnlab.physics.jetprep`). ``data.jet_prep`` (a list of
step names) replaces the source's own steps, e.g. ``[centre, flip]``. ``data.path`` is the .h5
file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import torch

from cnnlab.data.dataset import ArrayDataset, DatasetSplits
from cnnlab.data.sources import SOURCES
from cnnlab.errors import DataError
from cnnlab.physics import jetprep
from cnnlab.physics.images import CHANNELS, jet_images, wrap_phi
from cnnlab.physics.store import open_for_reading, read_constituents, read_jets

FEATURES = ("pt", "eta", "phi", "mass", "multiplicity", "n_charged", "girth", "parton_id")
_BALANCE_SEED = 0


@dataclass(frozen=True)
class JetsView:
    """How a source presents the file: coordinate steps before pixelising, then normalisation."""

    steps: tuple[str, ...] = ()
    normalise: bool = False


VIEWS = {"jets": JetsView(), "jets-aligned": JetsView(jetprep.ALIGN),
         "jets-aligned-norm": JetsView(jetprep.ALIGN, normalise=True)}


_GOLDEN = (np.sqrt(5.0) - 1) / 2


def split_masks(block: np.ndarray, test_split: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) masks from each jet's generator block."""
    test = np.modf((np.asarray(block, dtype=np.float64) + 1) * _GOLDEN)[0] < test_split
    return ~test, test


def balanced_index(labels: np.ndarray, mask: np.ndarray, seed: int = _BALANCE_SEED) -> np.ndarray:
    """Sorted indices of ``mask`` rows with the majority class subsampled to the minority's size."""
    rng = np.random.default_rng(seed)
    chosen = [np.flatnonzero(mask & (labels == c)) for c in (0, 1)]
    n = min(len(c) for c in chosen)
    return np.sort(np.concatenate([rng.choice(c, n, replace=False) if len(c) > n else c for c in chosen]))


def aligned_images(path, view: JetsView, n_jets: int, follow_links: bool = False) -> np.ndarray:
    """Re-pixelise the stored constituents after ``view.steps`` (the file's pixel settings)."""
    with open_for_reading(path, follow_links) as h5:
        settings = json.loads(h5.attrs["settings"])
        jet_eta = h5["jets/eta"][:n_jets].astype(np.float64)
        jet_phi = h5["jets/phi"][:n_jets].astype(np.float64)
    c, jet = read_constituents(path, follow_links)
    c = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in c.items()}
    u = c["eta"] - jet_eta[jet]
    v = wrap_phi(c["phi"] - jet_phi[jet])
    u, v = jetprep.apply_steps(view.steps, jet, c["pt"], u, v)
    _, weights = CHANNELS.get(settings["channels"])(c)
    images = jet_images(jet, u, v, weights, n_jets, settings["pixels"], settings["extent"])
    return images


def load_jets(path, view: JetsView = JetsView(), test_split: float = 0.2,
              balance_train: bool = True, follow_links: bool = False) -> DatasetSplits:
    """The splits of a jets file; its layout and sizes checked first (:func:`store.check_layout`;
    HDF5 links refused unless ``follow_links``, ``data.hdf5_links``)."""
    data = read_jets(path, images=not view.steps, follow_links=follow_links)
    jets = data["jets"]
    n = len(jets["label"])
    if n == 0:
        raise DataError(f"{path}: holds no jets yet")
    images = aligned_images(path, view, n, follow_links) if view.steps else data["images"]
    if view.normalise:
        images = jetprep.normalise(images)
    labels = jets["label"].astype(np.int64)
    train_mask, test_mask = split_masks(jets["block"], test_split)
    parts = {}
    for name, mask in (("train", train_mask), ("test", test_mask)):
        balanced = name == "test" or balance_train
        index = balanced_index(labels, mask) if balanced else np.flatnonzero(mask)
        if min(np.sum(labels[index] == c) for c in (0, 1)) == 0:
            raise DataError(f"{path}: the {name} split has no jets of one class ({int(mask.sum())} jets "
                            f"in {name} with data.test_split={test_split}): generate more jets")
        parts[name] = index
    splits = DatasetSplits(
        train=ArrayDataset(torch.from_numpy(np.ascontiguousarray(images[parts["train"]])),
                           torch.from_numpy(labels[parts["train"]])),
        test=ArrayDataset(torch.from_numpy(np.ascontiguousarray(images[parts["test"]])),
                          torch.from_numpy(labels[parts["test"]])),
        classes=list(data["classes"]),
        extras={"test": {k: jets[k][parts["test"]] for k in FEATURES},
                "channels": data["channels"], "path": str(path)},
    )
    return splits


def _register(name: str, view: JetsView) -> None:
    def source(cfg) -> DatasetSplits:
        if cfg.path is None:
            raise DataError(f"data.source={name} needs data.path: a file made by "
                            "`cnnlab data jets --jets N --out FILE.h5`")
        chosen = view if cfg.jet_prep is None else JetsView(*jetprep.parse_steps(cfg.jet_prep))
        return load_jets(cfg.path, chosen, cfg.test_split, balance_train=cfg.balance == "none",
                         follow_links=cfg.hdf5_links)

    source.__doc__ = f"Quark/gluon jet images from a `cnnlab data jets` file ({name})."
    SOURCES.register(name)(source)


for _name, _view in VIEWS.items():
    _register(_name, _view)
