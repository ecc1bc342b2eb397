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
from typing import IO, Iterable, Iterator

from cnnlab.errors import UserError

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


def check_output(out: str | Path, what: str, hint: str, runs: Iterable[str | Path] = (),
                 own: Iterable[str | Path] = ()) -> None:
    """UserError unless ``what`` (a command's output file) can be written at ``out``, checked before
    the work that makes it: not a folder; the nearest existing folder writable (the missing ones are
    made); not a write-protected file; not an existing file of one of the run directories ``runs``
    other than the command's own outputs ``own`` (files or folders). ``hint``: what to do instead."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{out}: is a folder; {what} is a file: give its name ({hint})")
    folder = next((p for p in (out.parent, *out.parent.parents) if p.exists()), Path("."))
    if not folder.is_dir() or not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UserError(f"{out if out.exists() else folder}: cannot write {what} there (not a writable folder); "
                        f"{hint}")
    if out.exists():
        target, allowed = out.resolve(), [Path(p).resolve() for p in own]
        for run in map(lambda p: Path(p).resolve(), runs):
            if target.is_relative_to(run) and not any(target.is_relative_to(p) for p in allowed):
                raise UserError(f"{out}: is a file of the run {run}, which {what} would replace; {hint}")


def _naming(exc: OSError, path: Path) -> OSError:
    """The error as one about ``path`` (not the removed temporary file, nor no file at all)."""
    if exc.filename is not None and Path(exc.filename) not in (path, path.parent) \
            and not str(exc.filename).endswith(".part"):
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(path))
