"""Reader for the IDX format of LeCun's MNIST files (and any dataset stored the same way).

An IDX file is a big-endian header ``0x00 0x00 <dtype> <ndim>`` followed by ``ndim``
uint32 dimensions and the payload in C order.  The files may be gzip-compressed.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np

from cnnlab.errors import DataError

_IDX_DTYPES = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def read_payload(path: Path) -> bytes:
    """The decompressed bytes of ``path`` (gzip if it ends in .gz); a clear error if damaged."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); the file is truncated or corrupt. "
                        "Delete it to download it again.") from None


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def parse_idx(payload: bytes, name: str = "<idx>") -> np.ndarray:
    """Decode an IDX payload into an array, checking header and length."""
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
    expected = int(np.prod(shape)) * dtype.itemsize
    got = len(payload) - header_len
    if got != expected:
        raise DataError(f"{name}: IDX header says shape {shape} ({expected} bytes) but the file "
                        f"holds {got} bytes; it is truncated or corrupt")
    return np.frombuffer(payload, dtype=dtype, count=int(np.prod(shape)), offset=header_len).reshape(shape)


def read_idx(path: Path, expected_sha256: str | None = None) -> np.ndarray:
    """Read one IDX file, verifying the checksum of its decompressed payload if given."""
    payload = read_payload(path)
    if expected_sha256 is not None and sha256(payload) != expected_sha256:
        raise DataError(f"{path}: checksum mismatch (sha256 of the decompressed payload is "
                        f"{sha256(payload)[:12]}..., expected {expected_sha256[:12]}...); "
                        "the file is corrupt. Delete it to download it again.")
    return parse_idx(payload, str(path))
