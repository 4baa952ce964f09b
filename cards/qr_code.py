"""A QR code as a PNG data URI, for an Adaptive Card's Image (the Verified ID link the user scans).

The symbol comes from the `qrcode` package (pure Python, pinned in requirements.txt); the PNG is written here with
zlib (one bit per pixel, black on white), so neither Pillow nor pypng is needed.
"""

from __future__ import annotations

import base64
import struct
import zlib

QUIET_ZONE_MODULES = 4  # the white border the QR specification requires around the symbol
PIXELS_PER_MODULE = 4
MAX_TEXT_BYTES = 1024  # a Verified ID link is about 200 bytes; anything far longer is not one


def qr_modules(text: str) -> list[list[bool]]:
    """The symbol's dark (True) and light modules, with the quiet zone, at error correction level M."""
    if not text or len(text.encode("utf-8")) > MAX_TEXT_BYTES:
        raise ValueError("a QR code needs a link of 1 to 1024 bytes")
    # Loaded on first use: a bot without Verified ID never draws a QR code.
    import qrcode
    import qrcode.constants

    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=QUIET_ZONE_MODULES)
    symbol.add_data(text.encode("utf-8"))
    symbol.make(fit=True)
    return [[bool(module) for module in row] for row in symbol.get_matrix()]


def qr_png(text: str, pixels_per_module: int = PIXELS_PER_MODULE) -> bytes:
    modules = qr_modules(text)
    size = len(modules) * pixels_per_module
    rows: list[bytes] = []
    for row in modules:
        bits = "".join(("0" if dark else "1") * pixels_per_module for dark in row)  # 0 is black in a grey PNG
        bits += "1" * (-len(bits) % 8)
        packed = int(bits, 2).to_bytes(len(bits) // 8, "big")
        rows.extend([b"\x00" + packed] * pixels_per_module)  # filter type 0 (none) on every scanline
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)  # 1 bit per pixel, greyscale
    image = zlib.compress(b"".join(rows), 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", image) + _chunk(b"IEND", b"")


def qr_data_uri(text: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(text)).decode("ascii")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
