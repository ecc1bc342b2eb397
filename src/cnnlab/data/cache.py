"""A decoded-array cache: decoding 60,000 JPEGs takes seconds to minutes; reading one
``.npz`` of the decoded uint8 arrays takes well under a second.

Entries live in ``<cache_dir>/decoded/<stem>-<key>.npz``, keyed by what determines the
decoded arrays (the dataset's path, size and modification time -- or, for a folder, the
listing of its files -- and the decoding options), written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from cnnlab.atomic import atomic_write

#: Bump when the decoding changes, so that old cache entries are not reused
#: (2: 16-bit images scaled to 8 bits, no longer clipped).
DECODER_VERSION = 2


def _fingerprint(path: Path) -> dict:
    if path.is_file():
        st = path.stat()
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    digest = hashlib.sha256()
    for folder, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(folder, name))
            digest.update(f"{os.path.relpath(os.path.join(folder, name), path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return {"listing": digest.hexdigest()}


def cache_path(cache_root: Path, path: Path, options: dict) -> Path:
    path = path.resolve()
    key = {"path": str(path), **_fingerprint(path), "options": options, "version": DECODER_VERSION}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    stem = path.name.split(".")[0] or "data"
    return cache_root / "decoded" / f"{stem}-{digest}.npz"


def load_cached(path: Path, keys: tuple[str, ...] = ()) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None if absent, unreadable (truncated, garbage) or lacking one of
    ``keys``: a broken entry is rebuilt (and replaces the broken one)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception:  # noqa: BLE001 (numpy and zipfile raise many types for a damaged file)
        return None
    if any(k not in arrays for k in keys):
        return None
    return arrays


def save_cached(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically; a failure to cache (read-only or full disk) is not an error."""
    try:
        with atomic_write(path) as f:
            np.savez(f, **arrays)
    except OSError:
        pass
