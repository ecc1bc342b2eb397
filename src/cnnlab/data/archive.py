"""Reading the files of a directory tree or a ``.tar`` / ``.tar.gz`` / ``.zip`` archive
in place, without extracting anything.

Members are read into memory, never written to disk: each at most
:data:`~cnnlab.data.limits.MAX_MEMBER_BYTES`, all together at most the memory available (a
zip's declared sizes are summed before any member is inflated, a tar's as it is read). Every
member name is checked as if it were going to be extracted under the target: absolute paths,
``..`` components, symbolic and hard links and device files are rejected with an error naming
the member. (An archive that tries to escape its directory is malicious or broken; silently
skipping it would hide that.)
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from cnnlab.data.limits import MAX_MEMBER_BYTES, available_memory, check_fits, human
from cnnlab.errors import DataError

ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip")


@dataclass
class Member:
    """One entry: its path parts relative to the root, and how to read its bytes."""

    parts: tuple[str, ...]
    is_dir: bool
    read: Callable[[], bytes]
    origin: str  # "archive.tar.gz:train/cat/0001.jpg" or a filesystem path, for errors

    @property
    def name(self) -> str:
        return "/".join(self.parts)


@dataclass(frozen=True)
class Locator:
    """Where a member's bytes are, for reading later (and in worker processes: picklable).

    ``kind`` is ``file`` (a path), ``zip`` (a member name of a zip) or ``tar`` (the byte range
    of a member of an uncompressed tar, which can be read without scanning the archive).
    """

    kind: str
    path: str
    name: str = ""
    offset: int = 0
    size: int = 0

    def __call__(self) -> bytes:
        if self.kind == "file":
            with open(self.path, "rb") as f:
                _check_size(os.fstat(f.fileno()).st_size, self.path)
                return f.read()
        if self.kind == "zip":
            with zipfile.ZipFile(self.path) as zf:
                _check_size(zf.getinfo(self.name).file_size, f"{self.path}:{self.name}")
                return zf.read(self.name)
        _check_size(self.size, f"{self.path}:{self.name}")
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)


def _check_size(size: int, origin: str) -> None:
    """Refuse a member larger than any image before it is read (or inflated) into memory."""
    if size > MAX_MEMBER_BYTES:
        raise DataError(f"{origin}: {human(size)} uncompressed; files over {human(MAX_MEMBER_BYTES)} "
                        "are refused in image datasets (no image is that large; a zip bomb?)")


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return path.is_file() and name.endswith(ARCHIVE_SUFFIXES)


def safe_parts(name: str, origin: str) -> tuple[str, ...]:
    """The components of a member name, refusing anything that would land outside the root."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise DataError(f"{origin}: member '{name}' has an absolute path; refusing to read an "
                        "archive whose members could escape the target directory")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if ".." in parts:
        raise DataError(f"{origin}: member '{name}' contains '..'; refusing to read an archive "
                        "whose members could escape the target directory")
    return parts


def _tar_members(path: Path, lazy: bool = False) -> Iterator[Member]:
    if lazy and not path.name.lower().endswith(".tar"):
        raise DataError(f"{path}: a compressed tar has no random access, so it cannot be streamed; "
                        "extract it (or repack it as .zip or an uncompressed .tar), or use "
                        "data.loader=device")
    free, total = available_memory(), 0  # members are read one by one: a running total
    try:
        with tarfile.open(path, "r:*") as tf:
            for info in tf:
                parts = safe_parts(info.name, str(path))
                if info.issym() or info.islnk():
                    raise DataError(f"{path}: member '{info.name}' is a link (to '{info.linkname}'); "
                                    "links in dataset archives are refused")
                if not (info.isfile() or info.isdir()):
                    raise DataError(f"{path}: member '{info.name}' is not a regular file or folder")
                if not parts:
                    continue
                if info.isdir():
                    yield Member(parts, True, bytes, f"{path}:{info.name}")
                    continue
                if lazy:
                    read = Locator("tar", str(path), info.name, info.offset_data, info.size)
                    yield Member(parts, False, read, f"{path}:{info.name}")
                    continue
                _check_size(info.size, f"{path}:{info.name}")
                total += info.size
                check_fits(total, f"{path}:{info.name}", "the members read so far", free)
                data = tf.extractfile(info).read()  # sequential read: fast on .tar.gz
                yield Member(parts, False, lambda d=data: d, f"{path}:{info.name}")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read the archive ({exc}); it is truncated or corrupt") from None


def _zip_members(path: Path, lazy: bool = False) -> Iterator[Member]:
    try:
        with zipfile.ZipFile(path) as zf:
            if not lazy:  # every member is about to be inflated into memory: their declared sum
                check_fits(sum(i.file_size for i in zf.infolist()), str(path), "its members inflated")
            for info in zf.infolist():
                parts = safe_parts(info.filename, str(path))
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise DataError(f"{path}: member '{info.filename}' is a link; links in "
                                    "dataset archives are refused")
                if not parts:
                    continue
                origin = f"{path}:{info.filename}"
                if info.is_dir():
                    yield Member(parts, True, bytes, origin)
                elif lazy:
                    yield Member(parts, False, Locator("zip", str(path), info.filename), origin)
                else:
                    _check_size(info.file_size, origin)  # declared; zipfile reads no more than that
                    data = zf.read(info)
                    yield Member(parts, False, lambda d=data: d, origin)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise DataError(f"{path}: cannot read the archive ({exc}); it is truncated or corrupt") from None


def _dir_members(root: Path) -> Iterator[Member]:
    for folder, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            full = Path(folder) / name
            if full.is_symlink():
                raise DataError(f"{full}: is a symbolic link; links inside dataset folders are refused")
            parts = full.relative_to(root).parts
            if name in dirnames:
                yield Member(parts, True, bytes, str(full))
            else:
                yield Member(parts, False, Locator("file", str(full)), str(full))


def iter_members(path: Path, lazy: bool = False) -> Iterator[Member]:
    """Every file and folder under ``path`` (a directory or an archive), in a stable order.

    Archive members are read as they are listed, unless ``lazy``: then each member's ``read``
    is a :class:`Locator` (not possible for compressed tars)."""
    if path.is_dir():
        return _dir_members(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    name = path.name.lower()
    if name.endswith(".zip"):
        return _zip_members(path, lazy)
    if name.endswith(ARCHIVE_SUFFIXES):
        return _tar_members(path, lazy)
    raise DataError(f"{path}: not a folder or a .tar, .tar.gz, .tgz or .zip archive")
