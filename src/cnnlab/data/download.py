"""Downloads from public mirrors: atomic, checksum-verified, with a clear offline message.

A file is written to ``<name>.part`` in the target directory, verified, fsynced and only then
renamed into place, so an interrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import http.client
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Sequence

from cnnlab.atomic import atomic_write
from cnnlab.errors import DataError

#: Seconds to wait for a mirror before trying the next one.
TIMEOUT_S = 30


def fetch(url: str, timeout: float = TIMEOUT_S, chunk: int = 1 << 20) -> bytes:
    """GET ``url`` with a progress bar; raise DataError on a short read (Content-Length not met)."""
    from tqdm.auto import tqdm

    parts = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        declared = response.headers.get("Content-Length")
        total = int(declared) if declared is not None else None
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1],
                  leave=False, file=sys.stderr) as bar:
            try:
                while block := response.read(chunk):
                    parts.append(block)
                    bar.update(len(block))
            except http.client.IncompleteRead as exc:
                parts.append(exc.partial)
    data = b"".join(parts)
    if total is not None and total != len(data):
        raise DataError(f"{url}: truncated response ({len(data)} of {total} bytes)")
    return data


def download(
    filename: str,
    mirrors: Sequence[str],
    target: Path,
    verify: Callable[[bytes], str | None],
) -> Path:
    """Fetch ``filename`` from the first mirror that serves a verified copy into ``target``.

    ``verify(data)`` returns None when ``data`` is good, else a reason. Each mirror is tried in
    turn; if none succeeds the error lists what each one said.
    """
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            data = fetch(url)
        except DataError as exc:
            failures.append(str(exc))
            continue
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        problem = verify(data)
        if problem:
            failures.append(f"{url}: {problem}")
            continue
        with atomic_write(target) as f:
            f.write(data)
        return target
    offline = all("Errno" in f or "urlopen" in f or "Name or service" in f or "resolution" in f
                  for f in failures)
    hint = (" The network looks unreachable: copy the file there by hand, or run where the "
            "mirrors are reachable." if offline else "")
    raise DataError(f"could not download {filename} into {target.parent}.{hint}\n  "
                    + "\n  ".join(failures))
