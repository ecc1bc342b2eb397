"""The jets HDF5 file: layout, append of whole blocks, resume, reading.

Layout (format ``cnnlab-jets/1``)::

    images                 N x C x P x P float32   pixel sums (rows d_eta, columns d_phi)
    jets/<field>           N                       pt eta phi mass multiplicity n_charged girth
                                                   parton_id label(1 quark, 0 gluon) block event
    constituents/<field>   M = sum multiplicity    pt eta phi e charge pid, jet by jet in order
    blocks/<field>         B                       index seed + counters of each block
    attrs                  format, classes, channels, settings (JSON), seed, versions (JSON),
                           counters summed over blocks, n_jets, n_blocks, axes

Blocks are written in index order and each append ends by updating ``n_jets``/``n_blocks``;
a file interrupted mid-append is cut back to those on reopening, so resuming never duplicates
or loses a block.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cnnlab.data.limits import check_fits
from cnnlab.errors import DataError
from cnnlab.physics.generate import COUNTERS, CONSTITUENT_FIELDS, JET_FIELDS, Block
from cnnlab.physics.images import channel_names
from cnnlab.physics.settings import JetSettings

FORMAT = "cnnlab-jets/1"
CLASSES = ["gluon", "quark"]
BLOCK_FIELDS = ("index", "seed") + COUNTERS + ("jets",)

_JET_DTYPES = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "mass": np.float32,
               "girth": np.float32, "multiplicity": np.int32, "n_charged": np.int32,
               "parton_id": np.int32, "label": np.int8, "block": np.int64, "event": np.int64}
_CONSTITUENT_DTYPES = {"pt": np.float32, "eta": np.float32, "phi": np.float32, "e": np.float32,
                       "charge": np.int8, "pid": np.int32}


def _h5py():
    import h5py

    return h5py


def _grow(dataset, rows: np.ndarray) -> None:
    start = dataset.shape[0]
    dataset.resize(start + len(rows), axis=0)
    if len(rows):
        dataset[start:] = rows


class JetFile:
    """An open jets file for appending blocks (``with JetFile.open(...) as f: f.append(b)``)."""

    def __init__(self, h5, path: Path):
        self.h5 = h5
        self.path = path

    # -- creation / reopening ------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, settings: JetSettings, seed: int, versions: dict) -> "JetFile":
        """Create ``path`` or reopen it to append; its settings and seed must match."""
        path = Path(path)
        h5py = _h5py()
        if path.exists():
            try:
                h5 = h5py.File(path, "a")
            except OSError as exc:
                raise DataError(f"{path}: cannot be opened as HDF5 ({exc}); it is not a jets file "
                                "or is corrupt. Delete it or choose another --out.") from None
            f = cls(h5, path)
            if h5.attrs.get("format") == FORMAT and int(h5.attrs.get("n_blocks", -1)) == 0:
                # nothing committed (a run that failed or was killed before its first block):
                # the file holds no sample, so it is made anew with the settings asked now
                h5.close()
                path.unlink()
                return cls.open(path, settings, seed, versions)
            try:
                f._check_compatible(settings, seed)
                f._cut_to_committed()
            except BaseException:
                h5.close()
                raise
            return f
        path.parent.mkdir(parents=True, exist_ok=True)
        h5 = h5py.File(path, "w")
        f = cls(h5, path)
        f._create(settings, seed, versions)
        return f

    def _create(self, settings: JetSettings, seed: int, versions: dict) -> None:
        h5, p = self.h5, settings.pixels
        channels = channel_names(settings.channels)
        h5.attrs.update(format=FORMAT, classes=json.dumps(CLASSES), channels=json.dumps(channels),
                        settings=settings.model_dump_json(), seed=seed, versions=json.dumps(versions),
                        axes="images[n, channel, eta_bin, phi_bin]; bins of width "
                             f"{2 * settings.extent / p} over [-{settings.extent}, {settings.extent})"
                             " in d_eta (rows) and wrapped d_phi (columns) from the jet axis",
                        n_jets=0, n_blocks=0, **dict.fromkeys(COUNTERS, 0))
        # lzf: fast, and jet images are mostly zeros (sparse), so they shrink several-fold.
        h5.create_dataset("images", shape=(0, len(channels), p, p), maxshape=(None, len(channels), p, p),
                          dtype=np.float32, chunks=(64, len(channels), p, p), compression="lzf")
        for name, dtype in _JET_DTYPES.items():
            h5.create_dataset(f"jets/{name}", shape=(0,), maxshape=(None,), dtype=dtype,
                              chunks=(4096,), compression="lzf")
        for name, dtype in _CONSTITUENT_DTYPES.items():
            h5.create_dataset(f"constituents/{name}", shape=(0,), maxshape=(None,), dtype=dtype,
                              chunks=(65536,), compression="lzf")
        for name in BLOCK_FIELDS:
            h5.create_dataset(f"blocks/{name}", shape=(0,), maxshape=(None,), dtype=np.int64,
                              chunks=(1024,))
        h5.flush()

    def _check_compatible(self, settings: JetSettings, seed: int) -> None:
        attrs = self.h5.attrs
        if attrs.get("format") != FORMAT:
            raise DataError(f"{self.path}: not a cnnlab jets file (format {attrs.get('format')!r}); "
                            "choose another --out")
        check_layout(self.h5, self.path)
        stored = json.loads(attrs["settings"])
        wanted = json.loads(settings.model_dump_json())
        diff = [f"{k}: file has {stored.get(k)!r}, asked {v!r}" for k, v in wanted.items()
                if stored.get(k) != v]
        if diff:
            raise DataError(f"{self.path}: was generated with other settings, so appending would mix "
                            f"samples ({'; '.join(diff)}). Use the same settings or another --out.")
        if int(attrs["seed"]) != seed:
            raise DataError(f"{self.path}: was generated with --seed {int(attrs['seed'])}, not {seed}; "
                            "resuming needs the same seed (another seed: another --out)")

    def _cut_to_committed(self) -> None:
        """Drop rows written after the last committed block (an interrupted append)."""
        n_jets, n_blocks = int(self.h5.attrs["n_jets"]), int(self.h5.attrs["n_blocks"])
        n_constituents = int(self.h5["jets/multiplicity"][:n_jets].sum())
        self.h5["images"].resize(n_jets, axis=0)
        for name in _JET_DTYPES:
            self.h5[f"jets/{name}"].resize(n_jets, axis=0)
        for name in _CONSTITUENT_DTYPES:
            self.h5[f"constituents/{name}"].resize(n_constituents, axis=0)
        for name in BLOCK_FIELDS:
            self.h5[f"blocks/{name}"].resize(n_blocks, axis=0)

    # -- state ---------------------------------------------------------------------------
    @property
    def n_jets(self) -> int:
        return int(self.h5.attrs["n_jets"])

    @property
    def n_blocks(self) -> int:
        return int(self.h5.attrs["n_blocks"])

    def append(self, block: Block) -> None:
        if block.index != self.n_blocks:
            raise RuntimeError(f"block {block.index} appended after {self.n_blocks} blocks")
        h5 = self.h5
        _grow(h5["images"], block.images)
        for name, dtype in _JET_DTYPES.items():
            _grow(h5[f"jets/{name}"], block.jets[name].astype(dtype))
        for name, dtype in _CONSTITUENT_DTYPES.items():
            _grow(h5[f"constituents/{name}"], block.constituents[name].astype(dtype))
        row = {"index": block.index, "seed": block.seed, "jets": len(block), **block.counts}
        for name in BLOCK_FIELDS:
            _grow(h5[f"blocks/{name}"], np.array([row[name]], dtype=np.int64))
        for name in COUNTERS:
            h5.attrs[name] = int(h5.attrs[name]) + int(block.counts[name])
        # Commit last: these two say which rows are complete.
        h5.attrs["n_jets"] = self.n_jets + len(block)
        h5.attrs["n_blocks"] = self.n_blocks + 1
        h5.flush()

    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> "JetFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_summary(path: str | Path) -> dict:
    """Attributes of a jets file as plain data (settings, seed, versions, counters)."""
    with open_for_reading(path) as h5:
        attrs = dict(h5.attrs)
    out = {k: (v.item() if hasattr(v, "item") else v) for k, v in attrs.items()}
    for key in ("settings", "versions", "classes", "channels"):
        out[key] = _json_attr(attrs, key, path)
    return out


def open_for_reading(path: str | Path, follow_links: bool = False):
    """Open a jets file read-only, its layout checked (:func:`check_layout`); DataError if
    missing, not HDF5, not a jets file, or not laid out as this module writes."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: no such jets file. Make one with: cnnlab data jets --jets N --out {path}")
    h5py = _h5py()
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        hint = (" It is locked: is `cnnlab data jets` still writing it?" if "lock" in str(exc) else
                " It is truncated or not a jets file.")
        raise DataError(f"{path}: cannot be read as HDF5 ({exc}).{hint}") from None
    try:
        check_layout(h5, path, follow_links)
    except BaseException:
        h5.close()
        raise
    return h5


def _json_attr(attrs, key: str, path) -> object:
    try:
        return json.loads(attrs[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: attribute '{key}' is missing or not JSON ({exc}); the file is damaged") from None


def _count_attr(attrs, key: str, path) -> int:
    value = attrs.get(key)
    if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)) or value < 0:
        raise DataError(f"{path}: attribute '{key}' is {value!r}, not a count; the file is damaged")
    return int(value)


def check_layout(h5, path: Path, follow_links: bool = False) -> None:
    """The file is a jets file as :class:`JetFile` writes it: the format tag, the attributes
    (counts, JSON settings), every dataset present as a plain dataset of this file (links and
    external storage refused unless ``follow_links``, as ``data.hdf5_links`` for HDF5 sources),
    numeric, of the right rank and at least as long as the committed counts say."""
    from cnnlab.data.arrays import hdf5_dataset

    attrs = h5.attrs
    if attrs.get("format") != FORMAT:
        raise DataError(f"{path}: not a cnnlab jets file (no format={FORMAT!r} attribute)")
    n = _count_attr(attrs, "n_jets", path)
    _count_attr(attrs, "n_blocks", path)
    settings = _json_attr(attrs, "settings", path)
    channels = _json_attr(attrs, "channels", path)
    classes = _json_attr(attrs, "classes", path)
    if not (isinstance(classes, list) and len(classes) == 2 and isinstance(channels, list)
            and isinstance(settings, dict) and isinstance(settings.get("pixels"), int)):
        raise DataError(f"{path}: attributes 'classes', 'channels' or 'settings' are not what cnnlab writes; "
                        "the file is damaged")
    p = settings["pixels"]
    expected = {"images": (4, (len(channels), p, p), n)}
    expected |= {f"jets/{k}": (1, (), n) for k in _JET_DTYPES}
    expected |= {f"constituents/{k}": (1, (), 0) for k in _CONSTITUENT_DTYPES}
    for key, (ndim, tail, length) in expected.items():
        d = hdf5_dataset(h5, key, path, follow_links)
        if d.ndim != ndim or tuple(d.shape[1:]) != tail or d.shape[0] < length or d.dtype.kind not in "fiu":
            want = f"{' x '.join(['N', *map(str, tail)])} numbers, N >= {length}"
            raise DataError(f"{path}: '{key}' is {' x '.join(map(str, d.shape)) or 'a scalar'} {d.dtype}, "
                            f"expected {want}; the file is damaged or not written by cnnlab")


def read_jets(path: str | Path, images: bool = True, follow_links: bool = False) -> dict:
    """All committed jets of a file: ``{'images': N x C x P x P, 'jets': {field: N}, ...}``."""
    with open_for_reading(path, follow_links) as h5:
        n = int(h5.attrs["n_jets"])
        row = sum(np.dtype(dtype).itemsize for dtype in _JET_DTYPES.values())
        if images:
            row += int(np.prod(h5["images"].shape[1:])) * 4
        check_fits(n * row, str(path), f"its {n} jets")
        out = {"jets": {name: h5[f"jets/{name}"][:n] for name in _JET_DTYPES},
               "classes": json.loads(h5.attrs["classes"]),
               "channels": json.loads(h5.attrs["channels"])}
        if images:
            out["images"] = h5["images"][:n].astype(np.float32, copy=False)
    _check_jet_values(out["jets"], path)
    return out


def _check_jet_values(jets: dict, path) -> None:
    if not np.isin(jets["label"], (0, 1)).all():
        raise DataError(f"{path}: 'jets/label' holds values other than 0 (gluon) and 1 (quark)")
    if (jets["multiplicity"] < 0).any():
        raise DataError(f"{path}: 'jets/multiplicity' holds negative counts; the file is damaged")


def read_constituents(path: str | Path, follow_links: bool = False) -> tuple[dict, np.ndarray]:
    """Constituent arrays and the jet index of each constituent."""
    with open_for_reading(path, follow_links) as h5:
        n = int(h5.attrs["n_jets"])
        counts = h5["jets/multiplicity"][:n].astype(np.int64)
        if (counts < 0).any():
            raise DataError(f"{path}: 'jets/multiplicity' holds negative counts; the file is damaged")
        m = int(counts.sum())
        check_fits(m * 8 * (len(_CONSTITUENT_DTYPES) + 1), str(path), f"its {m} constituents")
        short = [name for name in _CONSTITUENT_DTYPES if h5[f"constituents/{name}"].shape[0] < m]
        if short:
            raise DataError(f"{path}: 'constituents/{short[0]}' holds fewer than the {m} constituents the "
                            "jets' multiplicities add up to; the file is damaged")
        arrays = {name: h5[f"constituents/{name}"][:m] for name in _CONSTITUENT_DTYPES}
    return arrays, np.repeat(np.arange(n), counts)
