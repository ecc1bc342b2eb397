"""Reader for the IDX format of LeCun's MNIST files (and any dataset stored the same way).

An IDX file is a big-endian header ``0x00 0x00 <dtype> <ndim>`` followed by ``ndim``
uint32 dimensions and the payload in C order.  The files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnlab.data.limits import check_fits
from cnnlab.errors import DataError

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _damaged(path, exc) -> DataError:
    return DataError(f"{path}: cannot be read ({exc}); the file is truncated or corrupt. "
                     "Delete it to download it again.")


def read_payload(path: Path) -> bytes:
    """The decompressed bytes of ``path`` (gzip if it ends in .gz), header first: the size its
    header declares is checked against the available memory before the rest is read, and no
    more than that is read (a gzip bomb stops there)."""
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[3] == 0:
                return head + f.read(4096)  # not IDX: parse_idx says so
            head += f.read(4 * head[3])
            size = _declared_bytes(head, str(path))
            if size is None:
                return head
            check_fits(size, str(path), "the IDX payload")
            body = f.read(size + 1)  # one byte more than declared: parse_idx reports the excess
            return head + body
    except (EOFError, OSError, zlib.error) as exc:
        raise _damaged(path, exc) from None


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _declared_bytes(header: bytes, name: str) -> int | None:
    """Payload bytes the header declares (Python integers: no overflow), None if it is cut short."""
    dtype_code, ndim = header[2], header[3]
    if dtype_code not in _IDX_DTYPES or len(header) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(f">{ndim}I", header[4:4 + 4 * ndim])
    return math.prod(shape) * np.dtype(_IDX_DTYPES[dtype_code]).itemsize


def parse_idx(payload: bytes, name: str = "<idx>") -> np.ndarray:
    """Decode an IDX payload into an array (native byte order), checking header and length."""
    if len(payload) < 4:
        raise DataError(f"{name}: too short to be an IDX file ({len(payload)} bytes)")
    zero, dtype_code, ndim = payload[0:2], payload[2], payload[3]
    if zero != b"\x00\x00" or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise DataError(f"{name}: not an IDX file (bad magic number {payload[:4].hex()})")
    header_len = 4 + 4 * ndim
    if len(payload) < header_len:
        raise DataError(f"{name}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", payload[4:header_len])
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    expected = _declared_bytes(payload[:header_len], name)
    got = len(payload) - header_len
    if got != expected:
        holds = f"{got} bytes" if got < expected else "more"  # read_payload stops one byte past
        raise DataError(f"{name}: IDX header says shape {shape} ({expected} bytes) but the file "
                        f"holds {holds}; it is truncated or corrupt")
    array = np.frombuffer(payload, dtype=dtype, count=math.prod(shape), offset=header_len).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)  # torch takes native byte order only


def read_idx(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read one IDX file, verifying the checksum of its decompressed payload if given."""
    payload = read_payload(path)
    if expected_sha256 is not None and sha256(payload) != expected_sha256:
        raise DataError(f"{path}: checksum mismatch (sha256 of the decompressed payload is "
                        f"{sha256(payload)[:12]}..., expected {expected_sha256[:12]}...); "
                        "the file is corrupt. Delete it to download it again.")
    return parse_idx(payload, str(path))
