"""Decoding one image file (bytes) into an ``H x W x C`` uint8 array, with Pillow: shared by the
folder source and the streaming loader."""

from __future__ import annotations

import io

import numpy as np

from cnnlab.errors import DataError

#: Pillow mode -> channels it naturally has; and channels -> the mode to convert to.
NATURAL_CHANNELS = {"1": 1, "L": 1, "I": 1, "I;16": 1, "F": 1, "LA": 2, "La": 2, "P": 3,
                    "RGB": 3, "YCbCr": 3, "CMYK": 3, "LAB": 3, "HSV": 3, "RGBA": 4, "RGBa": 4}
MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def decode_image(data: bytes, origin: str, channels: int | None) -> np.ndarray:
    """Decode one image to ``H x W x C`` uint8; a clear error naming ``origin`` if broken."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode now: a truncated file fails here, not later
            natural = NATURAL_CHANNELS.get(image.mode, 3)
            if (channels is not None and channels != natural) or image.mode not in MODES.values():
                image = image.convert(MODES[channels or natural])
            array = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{origin}: not a readable image ({exc}); the file is corrupt or truncated") from None
    return array[:, :, None] if array.ndim == 2 else array
