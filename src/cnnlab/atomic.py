"""Atomic file writes: readers see the old file or the new one, never half of either.

Checkpoints, metrics.csv, layers.csv, downloads and caches are all rewritten while a user may be
reading them (or while the process may be killed), so they share one pattern: write a temporary
file in the same directory (same filesystem, so the rename is atomic), flush it to disk, then
``os.replace`` it over the target. A failure removes the temporary file and leaves the target
as it was.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

#: the process's umask (read once: reading it means setting it)
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_write(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path`` in ``mode`` ('wb' or 'w'); on a clean exit it replaces
    ``path``, on an exception it is removed and the exception propagates."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    except OSError as exc:
        raise _naming(exc, path) from None
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; the file gets what open() would give
        # newline="" keeps text exactly as written (the csv module supplies its own line ends).
        with os.fdopen(fd, mode, **({} if "b" in mode else {"newline": "", "encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """The error as one about ``path`` (not the removed temporary file, nor no file at all)."""
    if exc.filename is not None and Path(exc.filename) not in (path, path.parent) \
            and not str(exc.filename).endswith(".part"):
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
