"""Reading back the files a run wrote: ``metrics.csv``, ``layers.csv``, ``sanity.json``,
``resumes.yaml``. They are cnnlab's own output, so anything that is not what cnnlab writes
(garbage, text that is not UTF-8, a missing column, a cut-off row, a word where a number belongs,
a list where an object belongs) means the file was damaged or edited; it is refused with a
:class:`~cnnlab.errors.CheckpointError` naming the file and the line, before anything uses it.
Nothing here imports torch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from cnnlab.errors import CheckpointError

#: the most bytes of a run's CSV or JSON file read whole (a 1000-epoch run's layers.csv is ~2 MB;
#: parsing runs at ~3 MB/s into ~15 times the file's size of rows, so 64 MiB is ~20 s, ~1 GB)
MAX_BYTES = 64 << 20
#: the most bytes of metrics.csv: one ~100-byte row per epoch, ~0.1 MB for 1000 epochs
MAX_METRICS_BYTES = 16 << 20


def parse_cell(text: str | None):
    """A CSV cell as written by cnnlab: '' -> None, then int, then float, else the text."""
    if text == "" or text is None:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_text(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """A run file's text; a CheckpointError naming it if it is larger than ``max_bytes`` (checked
    before reading: a huge file is refused at once, not parsed for minutes), unreadable or not UTF-8."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise CheckpointError(f"{path}: {size:,} bytes, more than cnnlab writes there (at most "
                                  f"{max_bytes:,} are read); not a file of this run, or damaged")
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); the file "
                              "is damaged") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def read_table(path: Path, columns: list[str], integers: tuple[str, ...], texts: tuple[str, ...] = (),
               max_bytes: int = MAX_BYTES) -> list[dict]:
    """Rows of a cnnlab CSV: every one of ``columns`` in the header, every row complete,
    ``integers`` set and integral, ``texts`` set, the other ``columns`` numbers or empty.
    Extra columns (written after the standard ones) are kept, parsed by :func:`parse_cell`."""
    damaged = "the file is damaged (it is rewritten whole after every epoch)"
    lines = read_text(path, max_bytes).splitlines(keepends=True)
    try:
        reader = csv.reader(lines)
        header = next(reader, None)
        raw = list(reader)
    except csv.Error as exc:
        raise CheckpointError(f"{path}: not CSV ({exc}); {damaged}") from None
    if header is None:
        raise CheckpointError(f"{path}: is empty (cnnlab writes at least its header line); {damaged}")
    missing = [c for c in columns if c not in header]
    if missing:
        raise CheckpointError(f"{path}: line 1 lacks the column(s) {', '.join(missing[:5])}; {damaged}")
    if lines and not lines[-1].endswith(("\n", "\r")):
        raise CheckpointError(f"{path}: its last line is cut off (no line end); {damaged}")
    rows = []
    for line, cells in enumerate(raw, start=2):
        if len(cells) != len(header):
            raise CheckpointError(f"{path}: line {line} has {len(cells)} fields, the header {len(header)}; {damaged}")
        row = {k: parse_cell(v) for k, v in zip(header, cells)}
        bad = [k for k in integers if not isinstance(row[k], int)]
        bad += [k for k in texts if not isinstance(row[k], str)]
        bad += [k for k in columns if k not in integers and k not in texts
                and row[k] is not None and not isinstance(row[k], (int, float))]
        if bad:
            what = ", ".join(f"{k}={row[k]!r}" for k in bad[:3])
            raise CheckpointError(f"{path}: line {line} is not a row of this file ({what}); {damaged}")
        rows.append(row)
    return rows


def read_json_object(path: Path, lists: dict[str, tuple[str, ...]] | None = None, hint: str = "") -> dict:
    """A JSON object; each key of ``lists`` must hold a list of objects with those string fields."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"{path}: not JSON ({exc}){hint}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: not a JSON object{hint}")
    for key, fields in (lists or {}).items():
        items = data.get(key)
        if not isinstance(items, list) or not all(
                isinstance(item, dict) and all(isinstance(item.get(f), str) for f in fields) for item in items):
            raise CheckpointError(f"{path}: '{key}' is not a list of objects with {', '.join(fields)} "
                                  f"(got {str(items)[:80]}){hint}")
    return data
