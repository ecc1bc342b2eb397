"""Sizes a dataset file declares, checked before anything is allocated.

A 7 KB HDF5 file can declare a 1.4 TiB dataset, an IDX header four dimensions of 2^32-1, a
476 KB zip a 400 MB member: trusting the declaration means a MemoryError (or the machine
swapping) instead of a message. Each reader computes what it is about to allocate, in Python
integers (no overflow), and asks :func:`check_fits` first.
"""

from __future__ import annotations

import os

from cnnlab.errors import DataError

#: the largest member of a dataset archive read into memory (one image is kilobytes)
MAX_MEMBER_BYTES = 256 << 20


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable`` on Linux; physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 1 << 40


def human(nbytes: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} EiB"  # pragma: no cover


def check_fits(nbytes: int, origin: str, what: str, free: int | None = None) -> None:
    """DataError if ``nbytes`` (what ``origin`` declares for ``what``) exceed the available memory
    (``free``: as measured before the reading began, for a running total)."""
    free = available_memory() if free is None else free
    if nbytes > free:
        raise DataError(f"{origin}: {what} would take {human(nbytes)} but {human(free)} of memory is "
                        "available; the file declares more than it can hold, or it is too large to load "
                        "whole (an image folder can stream: data.loader=stream)")


def check_image_size(height: int, width: int, what: str, channels: int = 1) -> None:
    """UserError for an image size asked on the command line (``predict --size``, ``summary
    --input``) beyond Pillow's decompression-bomb pixel limit (the limit images read from files
    have), or whose ``channels`` float32 maps exceed the available memory."""
    from PIL import Image

    pixels = height * width
    limit = Image.MAX_IMAGE_PIXELS
    if limit and pixels > limit:
        raise DataError(f"{what} {height}x{width} is {pixels} pixels, more than the {limit} that images may "
                        "have (Pillow's decompression-bomb limit); give a smaller size")
    check_fits(pixels * channels * 4, f"{what} {height}x{width}", f"{channels} feature map(s)")
