"""A small PNG reader for the icon tests, written independently of `manifest.png` (the writer).

Reads 8-bit, non-interlaced truecolour images (RGB or RGBA) with any of the five row filters, checks every chunk's
CRC and the chunk order, and returns RGBA pixels (alpha 255 for RGB images).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}

Rgba = tuple[int, int, int, int]


class PngError(ValueError):
    pass


@dataclass(frozen=True)
class PngImage:
    width: int
    height: int
    color_type: int  # 2 = RGB, 6 = RGBA
    chunk_types: tuple[str, ...]
    pixels: tuple[Rgba, ...]  # row by row

    def pixel(self, x: int, y: int) -> Rgba:
        return self.pixels[y * self.width + x]


def read_png(data: bytes) -> PngImage:
    if not data.startswith(SIGNATURE):
        raise PngError("missing PNG signature")
    position = len(SIGNATURE)
    chunk_types: list[str] = []
    header = b""
    compressed = bytearray()
    while position < len(data):
        if position + 8 > len(data):
            raise PngError("truncated chunk header")
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        crc_bytes = data[position + 8 + length : position + 12 + length]
        if len(body) != length or len(crc_bytes) != 4:
            raise PngError(f"truncated {kind!r} chunk")
        if struct.unpack(">I", crc_bytes)[0] != zlib.crc32(kind + body):
            raise PngError(f"bad CRC in {kind!r} chunk")
        chunk_types.append(kind.decode("ascii"))
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed.extend(body)
        position += 12 + length
    if not chunk_types or chunk_types[0] != "IHDR" or chunk_types[-1] != "IEND" or "IDAT" not in chunk_types:
        raise PngError(f"chunks out of order: {chunk_types}")
    width, height, depth, color_type, compression, filtering, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or color_type not in _CHANNELS or (compression, filtering, interlace) != (0, 0, 0):
        raise PngError(f"unsupported PNG: depth {depth}, colour type {color_type}, interlace {interlace}")
    channels = _CHANNELS[color_type]
    raw = zlib.decompress(bytes(compressed))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise PngError(f"image data is {len(raw)} bytes, expected {height * (stride + 1)}")
    rows: list[bytes] = []
    previous = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], previous, channels)
        rows.append(row)
        previous = row
    pixels: list[Rgba] = []
    for row in rows:
        for x in range(width):
            values = row[x * channels : (x + 1) * channels]
            alpha = values[3] if channels == 4 else 255
            pixels.append((values[0], values[1], values[2], alpha))
    return PngImage(width, height, color_type, tuple(chunk_types), tuple(pixels))


def _unfilter(kind: int, line: bytes, previous: bytes, bpp: int) -> bytes:
    out = bytearray(len(line))
    for index, value in enumerate(line):
        left = out[index - bpp] if index >= bpp else 0
        up = previous[index]
        up_left = previous[index - bpp] if index >= bpp else 0
        if kind == 0:
            predictor = 0
        elif kind == 1:
            predictor = left
        elif kind == 2:
            predictor = up
        elif kind == 3:
            predictor = (left + up) // 2
        elif kind == 4:
            predictor = _paeth(left, up, up_left)
        else:
            raise PngError(f"unknown filter type {kind}")
        out[index] = (value + predictor) & 0xFF
    return bytes(out)


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distance_left, distance_up, distance_up_left = abs(estimate - left), abs(estimate - up), abs(estimate - up_left)
    if distance_left <= distance_up and distance_left <= distance_up_left:
        return left
    if distance_up <= distance_up_left:
        return up
    return up_left
