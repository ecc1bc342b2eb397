"""A restricted unpickler for the CIFAR python batches: data, never code.

``pickle.load`` can call any importable function (``os.system`` included), so a downloaded
pickle must not be loaded with it. A CIFAR batch holds only dicts, lists, byte strings, ints
and NumPy uint8 arrays; the only globals its pickle needs are NumPy's array reconstruction
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``) and, for
pickles written by Python 3 with protocol 2, ``_codecs.encode`` for byte strings. Any other
global is refused before it is imported, and the arrays are checked to hold plain numbers.
"""

from __future__ import annotations

import codecs
import io
import pickle

import numpy as np

from cnnlab.errors import DataError

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's _reconstruct, wherever it lives

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` resolves only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file, origin: str):
        super().__init__(file, encoding="bytes")  # CIFAR was pickled by Python 2
        self.origin = origin

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise DataError(f"{self.origin}: the pickle refers to '{module}.{name}', which a CIFAR "
                            "batch never contains; refusing to load it (it could run code)") from None

    def persistent_load(self, pid):
        raise DataError(f"{self.origin}: the pickle uses persistent ids; refusing to load it")


def _check_plain(value, origin: str, depth: int = 0):
    """Only dicts/lists/tuples of bytes, str, numbers and numeric arrays; keys decoded."""
    if depth > 4:
        raise DataError(f"{origin}: the pickle nests deeper than a CIFAR batch does")
    if isinstance(value, dict):
        return {(k.decode("latin1") if isinstance(k, bytes) else k): _check_plain(v, origin, depth + 1)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_check_plain(v, origin, depth + 1) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "uifb":
            raise DataError(f"{origin}: an array of dtype {value.dtype} is not CIFAR data; refusing it")
        return value
    if isinstance(value, (bytes, str, int, float, bool)) or value is None:
        return value
    raise DataError(f"{origin}: the pickle holds a {type(value).__name__}, which a CIFAR batch never contains")


def restricted_loads(data: bytes, origin: str):
    """Unpickle ``data`` allowing only CIFAR's plain types; DataError on anything else."""
    try:
        value = RestrictedUnpickler(io.BytesIO(data), origin).load()
    except DataError:
        raise
    except (pickle.UnpicklingError, EOFError, TypeError, ValueError, AttributeError,
            IndexError, KeyError, UnicodeDecodeError) as exc:
        raise DataError(f"{origin}: not a readable CIFAR pickle ({exc}); it is truncated or corrupt") from None
    return _check_plain(value, origin)
