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


#: Pillow's modes of one 16-bit channel (PNG, TIFF, PGM with a maxval over 255)
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def _eight_bit(image):
    """``image`` in an 8-bit mode. 16-bit grey is scaled, v -> round(255 v / 65535) (Pillow's own
    conversion clips at 255, which turns a 16-bit image binary); a 32-bit integer image is scaled
    the same way if its values fit 16 bits; float images are refused."""
    from PIL import Image

    if image.mode in SIXTEEN_BIT or image.mode == "I":
        values = np.asarray(image).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"{image.mode} image with values {values.min()}..{values.max()}, beyond 16 bits; "
                             "save it as an 8- or 16-bit image")
        return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), "L")
    if image.mode == "F":
        raise ValueError("a 32-bit float image has no 8-bit scale; save it as an 8- or 16-bit image, "
                         "or store float arrays in an .npz (data.source=npz)")
    return image


def _refuse_lost_transparency(image, mode: str, origin: str) -> None:
    """DataError if converting ``image`` to ``mode`` (one without alpha) would drop transparency that
    some pixel uses: the colour under a transparent pixel is whatever the file holds (often black),
    not what a viewer shows, so the converted image would be silently another image. Opaque alpha
    (every pixel 255) is dropped freely."""
    if "A" in mode or not image.has_transparency_data:
        return
    lowest = image.convert("RGBA").getchannel("A").getextrema()[0]
    if lowest < 255:
        raise DataError(f"{origin}: has transparent pixels (alpha down to {lowest}) and the model takes "
                        f"{mode} images, whose colour under transparency would be a guess; flatten it onto "
                        "the background of the training images first")


def decode_image(data: bytes, origin: str, channels: int | None) -> np.ndarray:
    """Decode one image to ``H x W x C`` uint8; a clear error naming ``origin`` if broken, too
    large (Pillow's decompression-bomb limit) or of a depth that has no 8-bit reading."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise DataError(f"{origin}: the file is empty (0 bytes), not an image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # decode now: a truncated file fails here, not later
            natural = NATURAL_CHANNELS.get(image.mode, 3)
            image = _eight_bit(image)
            if (channels is not None and channels != natural) or image.mode not in MODES.values():
                mode = MODES[channels or natural]
                _refuse_lost_transparency(image, mode, origin)
                image = image.convert(mode)
            array = np.asarray(image, dtype=np.uint8)
    except Image.DecompressionBombError as exc:
        raise DataError(f"{origin}: refused: {exc} (an image this large is not a training image)") from None
    except UnidentifiedImageError:
        raise DataError(f"{origin}: not a readable image (not an image format Pillow knows); the file is "
                        "corrupt or truncated, or of a kind Pillow cannot read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{origin}: not a readable image ({exc}); the file is corrupt or truncated, "
                        "or of a kind Pillow cannot read") from None
    return array[:, :, None] if array.ndim == 2 else array
