"""Image folders: ``root/<class>/*.png|jpg`` as a directory or a .tar/.tar.gz/.zip archive.

Two layouts are recognised (possibly under one wrapping folder, e.g. ``cifar10/train/...``):

- ``train/<class>/*`` and ``test/<class>/*``: the given split;
- ``<class>/*``: a stratified, seeded (seed 0, independent of the run's seed) split holding
  out ``data.test_split`` of every class as the test set.

Class names are the sorted folder names. All images must have the same size; the channel
count is ``data.channels`` (images are converted) or that of the first image (a different
one is an error). Decoded arrays are cached (:mod:`cnnlab.data.cache`), so only the first
load decodes.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.archive import Member, iter_members
from cnnlab.data.cache import cache_path, load_cached, save_cached
from cnnlab.data.config import DataConfig
from cnnlab.data.dataset import ArrayDataset, DatasetSplits
from cnnlab.data.decode import decode_image
from cnnlab.data.sources import SOURCES, cache_dir
from cnnlab.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
SPLITS = ("train", "test")
def _is_image(member: Member) -> bool:
    name = member.parts[-1]
    return not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES)


def scan_tree(path: Path, lazy: bool = False) -> tuple[list[tuple[str, str, Member]], list[str]]:
    """Walk ``path``: ``[(split, class, member)]`` of its images (split "" when the tree has
    no train/test folders) and the sorted class names. Checks the layout. With ``lazy``,
    archive members are located, not read."""
    files, dirs = [], []
    for member in iter_members(path, lazy):
        if member.is_dir:
            dirs.append(member.parts)
        elif _is_image(member):
            files.append(member)
    if not files:
        raise DataError(f"{path}: no images found (expected <class>/*.png|jpg, or "
                        "train/<class>/... and test/<class>/...)")
    split_layout = any(len(m.parts) >= 3 and m.parts[-3] in SPLITS for m in files)
    depth = 3 if split_layout else 2
    prefix = files[0].parts[:-depth]
    found = []
    for m in files:
        if len(m.parts) < depth or m.parts[:-depth] != prefix or (split_layout and m.parts[-3] not in SPLITS):
            expected = "train|test/<class>/<image>" if split_layout else "<class>/<image>"
            raise DataError(f"{m.origin}: does not fit the folder layout {'/'.join(prefix + (expected,))} "
                            "that the other images follow")
        found.append((m.parts[-3] if split_layout else "", m.parts[-2], m))
    counts: dict[tuple[str, str], int] = {}
    for split, cls, _ in found:
        counts[(split, cls)] = counts.get((split, cls), 0) + 1
    for parts in dirs:  # a class folder that holds no image is almost surely a mistake
        if len(parts) == len(prefix) + depth - 1 and parts[:len(prefix)] == prefix:
            key = (parts[-2], parts[-1]) if split_layout else ("", parts[-1])
            if (not split_layout or key[0] in SPLITS) and key not in counts:
                raise DataError(f"{path}: class folder '{'/'.join(parts)}' has no images")
    classes = sorted({cls for split, cls, _ in found if split in ("", "train")})
    if split_layout:
        if not any(split == "train" for split, _, _ in found):
            raise DataError(f"{path}: has a test/ folder but no train/ folder")
        extra = sorted({cls for split, cls, _ in found if split == "test"} - set(classes))
        if extra:
            raise DataError(f"{path}: test/ has classes that train/ lacks: {', '.join(extra)}")
    return found, classes


def read_image_tree(path: Path, channels: int | None = None, progress: bool = True) -> dict[str, np.ndarray]:
    """Decode every image under ``path``: images (N x C x H x W uint8), labels, split (0 train,
    1 test, -1 not yet split) and classes."""
    from tqdm import tqdm

    found, classes = scan_tree(path)
    index = {c: i for i, c in enumerate(classes)}
    # Without data.channels every image decodes to its own channel count, so that a
    # grayscale image among colour ones is reported rather than silently converted.
    first = decode_image(found[0][2].read(), found[0][2].origin, channels)
    images = np.empty((len(found), first.shape[2], *first.shape[:2]), dtype=np.uint8)

    def decode(i: int) -> None:
        member = found[i][2]
        array = decode_image(member.read(), member.origin, channels)
        if array.shape != first.shape:
            what = "channels" if array.shape[:2] == first.shape[:2] else "size"
            raise DataError(f"{member.origin}: image is {array.shape[1]}x{array.shape[0]} with "
                            f"{array.shape[2]} channel(s) but {found[0][2].origin} is "
                            f"{first.shape[1]}x{first.shape[0]} with {first.shape[2]}: mismatched {what}"
                            + ("; set data.channels to convert all images" if what == "channels" else ""))
        images[i] = array.transpose(2, 0, 1)

    # Pillow releases the GIL while decoding, so threads decode in parallel.
    with ThreadPoolExecutor(max_workers=2) as pool, \
            tqdm(total=len(found), desc=f"decoding {path.name}", unit="img", file=sys.stderr,
                 disable=None if progress else True, leave=False) as bar:
        for start in range(0, len(found), 2048):
            list(pool.map(decode, range(start, min(start + 2048, len(found)))))
            bar.update(min(2048, len(found) - start))
    labels = np.array([index.get(cls, -1) for _, cls, _ in found], dtype=np.int64)
    split = np.array([{"train": 0, "test": 1, "": -1}[s] for s, _, _ in found], dtype=np.int8)
    return {"images": images, "labels": labels, "split": split, "classes": np.array(classes)}


def stratified_test_mask(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Hold out ``round(fraction * n_c)`` random examples of every class c as test."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(fraction * len(members)))
        mask[rng.permutation(members)[:k]] = True
    return mask


def splits_from_tree(arrays: dict, test_split: float, name: str) -> DatasetSplits:
    """Train/test splits from ``read_image_tree``'s arrays (``images`` may be lazy)."""
    split = arrays["split"]
    test = split == 1 if (split >= 0).all() else stratified_test_mask(arrays["labels"], test_split)
    labels, mask = torch.from_numpy(arrays["labels"]), torch.from_numpy(test)
    images = arrays["images"]
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    all_images = ArrayDataset(images, labels)
    splits = DatasetSplits(train=all_images.subset(~mask), test=all_images.subset(mask),
                           classes=[str(c) for c in arrays["classes"]])
    splits.check_labels(name)
    return splits


def lazy_image_tree(path: Path, channels: int | None) -> dict:
    """Like :func:`read_image_tree`, but the images are located, not decoded (streaming)."""
    from cnnlab.data.stream import LazyImages

    found, classes = scan_tree(path, lazy=True)
    first = decode_image(found[0][2].read(), found[0][2].origin, channels)
    shape = (first.shape[2], first.shape[0], first.shape[1])
    images = LazyImages([m.read for _, _, m in found], [m.origin for _, _, m in found], shape, channels)
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index.get(cls, -1) for _, cls, _ in found], dtype=np.int64)
    split = np.array([{"train": 0, "test": 1, "": -1}[s] for s, _, _ in found], dtype=np.int8)
    return {"images": images, "labels": labels, "split": split, "classes": np.array(classes)}


@SOURCES.register("folder")
def folder_source(cfg: DataConfig) -> DatasetSplits:
    """Image folder or archive at ``data.path`` (see the module docstring for layouts)."""
    if cfg.path is None:
        raise DataError("data.source=folder needs data.path: a folder or .tar/.tar.gz/.zip of "
                        "<class>/*.png|jpg (optionally under train/ and test/)")
    path = Path(cfg.path).expanduser()
    if not path.exists():
        raise DataError(f"data.path={cfg.path}: no such file or folder")
    if cfg.loader == "stream":
        return splits_from_tree(lazy_image_tree(path, cfg.channels), cfg.test_split, str(path))
    arrays = None
    entry = cache_path(cache_dir(), path, {"channels": cfg.channels}) if cfg.cache else None
    if entry is not None:
        arrays = load_cached(entry, ("images", "labels", "split", "classes"))
        if arrays is not None and not (len(arrays["images"]) == len(arrays["labels"]) == len(arrays["split"])):
            arrays = None  # an entry that does not hold together is rebuilt
    if arrays is None:
        arrays = read_image_tree(path, cfg.channels)
        if entry is not None:
            save_cached(entry, arrays)
    return splits_from_tree(arrays, cfg.test_split, str(path))
