"""A minimal PNG writer (8-bit RGB or RGBA, no interlacing), so the icons need no imaging library.

Only `struct` and `zlib`: each row is stored with filter type 0 (None), the image data in one IDAT chunk.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOR_TYPE_RGB = 2
COLOR_TYPE_RGBA = 6
_CHANNELS = {COLOR_TYPE_RGB: 3, COLOR_TYPE_RGBA: 4}

Pixel = tuple[int, ...]


def encode_png(width: int, height: int, pixels: Sequence[Pixel], *, alpha: bool) -> bytes:
    """PNG bytes of a `width`×`height` image; `pixels` row by row, each (r, g, b) or (r, g, b, a) in 0..255."""
    color_type = COLOR_TYPE_RGBA if alpha else COLOR_TYPE_RGB
    channels = _CHANNELS[color_type]
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}×{height}")
    if len(pixels) != width * height:
        raise ValueError(f"expected {width * height} pixels, got {len(pixels)}")
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter type None
        for pixel in pixels[y * width : (y + 1) * width]:
            if len(pixel) != channels or any(not 0 <= channel <= 255 for channel in pixel):
                raise ValueError(f"pixel {pixel!r} is not {channels} channels in 0..255")
            raw.extend(pixel)
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(bytes(raw), 9)),
            _chunk(b"IEND", b""),
        )
    )


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk; ValueError when `data` does not start like a PNG."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
