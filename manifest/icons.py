"""Draws tapbot's two Teams icons: a shield with a keyhole, white on the accent colour.

    python -m manifest.icons     # rewrites manifest/color.png and manifest/outline.png

Teams wants a colour icon of 192×192 (opaque here: the accent colour behind the glyph, the glyph inside the
central 96×96 so hosts that crop or round it keep it whole) and an outline icon of 32×32 (white on a transparent
background, nothing but white). The glyph is one shape function sampled 6×6 times per pixel for smooth edges.
Only +, -, *, / and comparisons are used, so every IEEE 754 machine draws the same pixels.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from manifest import ACCENT_RGB, COLOR_ICON, OUTLINE_ICON
from manifest.png import Pixel, encode_png

COLOR_SIZE = 192
COLOR_GLYPH_BOX = 96  # Teams: the symbol of the colour icon stays inside the central 96×96
OUTLINE_SIZE = 32
OUTLINE_MARGIN = 1
SUPERSAMPLE = 6
WHITE = (255, 255, 255)

# The glyph in unit coordinates: u from left to right, v from top to bottom, both 0..1.
_SHIELD_HALF_WIDTH = 0.40
_SHIELD_TOP = 0.06  # the top edge is an arch: highest in the middle ...
_SHIELD_TOP_DROP = 0.10  # ... and this much lower at the corners
_SHIELD_SHOULDER = 0.48  # straight sides down to here, then curving in to the point
_SHIELD_POINT = 0.96
_KEYHOLE_CENTER = 0.41
_KEYHOLE_RADIUS = 0.105
_KEYHOLE_BOTTOM = 0.71
_KEYHOLE_STEM_TOP_HALF = 0.040
_KEYHOLE_STEM_BOTTOM_HALF = 0.075


def glyph_contains(u: float, v: float) -> bool:
    """Whether the point (u, v) of the unit square is white: inside the shield, outside the keyhole."""
    return _in_shield(u, v) and not _in_keyhole(u, v)


def _in_shield(u: float, v: float) -> bool:
    offset = abs(u - 0.5)
    if offset > _SHIELD_HALF_WIDTH or v > _SHIELD_POINT:
        return False
    ratio = offset / _SHIELD_HALF_WIDTH
    if v < _SHIELD_TOP + _SHIELD_TOP_DROP * ratio * ratio:
        return False
    if v <= _SHIELD_SHOULDER:
        return True
    t = (v - _SHIELD_SHOULDER) / (_SHIELD_POINT - _SHIELD_SHOULDER)
    return offset <= _SHIELD_HALF_WIDTH * (1.0 - t * t)


def _in_keyhole(u: float, v: float) -> bool:
    du = u - 0.5
    dv = v - _KEYHOLE_CENTER
    if du * du + dv * dv <= _KEYHOLE_RADIUS * _KEYHOLE_RADIUS:
        return True
    if not _KEYHOLE_CENTER <= v <= _KEYHOLE_BOTTOM:
        return False
    t = (v - _KEYHOLE_CENTER) / (_KEYHOLE_BOTTOM - _KEYHOLE_CENTER)
    return abs(du) <= _KEYHOLE_STEM_TOP_HALF + (_KEYHOLE_STEM_BOTTOM_HALF - _KEYHOLE_STEM_TOP_HALF) * t


def glyph_coverage(size: int, box_origin: int, box_size: int) -> list[int]:
    """Per pixel of a `size`×`size` image, the glyph's coverage as an alpha 0..255 (row by row).

    The glyph is drawn into the square of `box_size` pixels whose top-left corner is (`box_origin`, `box_origin`).
    """
    samples = SUPERSAMPLE * SUPERSAMPLE
    offsets = [(index + 0.5) / SUPERSAMPLE for index in range(SUPERSAMPLE)]
    coverage: list[int] = []
    for py in range(size):
        for px in range(size):
            if not (box_origin <= px < box_origin + box_size and box_origin <= py < box_origin + box_size):
                coverage.append(0)
                continue
            hits = 0
            for dy in offsets:
                v = (py + dy - box_origin) / box_size
                for dx in offsets:
                    if glyph_contains((px + dx - box_origin) / box_size, v):
                        hits += 1
            coverage.append((hits * 255 + samples // 2) // samples)
    return coverage


def color_icon_pixels() -> list[Pixel]:
    """192×192 opaque RGB: the white glyph blended over the accent colour."""
    origin = (COLOR_SIZE - COLOR_GLYPH_BOX) // 2
    return [_blend(ACCENT_RGB, WHITE, alpha) for alpha in glyph_coverage(COLOR_SIZE, origin, COLOR_GLYPH_BOX)]


def outline_icon_pixels() -> list[Pixel]:
    """32×32 RGBA: white everywhere, the glyph's coverage as alpha, so the background is fully transparent."""
    box = OUTLINE_SIZE - 2 * OUTLINE_MARGIN
    return [(*WHITE, alpha) for alpha in glyph_coverage(OUTLINE_SIZE, OUTLINE_MARGIN, box)]


def color_icon_png() -> bytes:
    return encode_png(COLOR_SIZE, COLOR_SIZE, color_icon_pixels(), alpha=False)


def outline_icon_png() -> bytes:
    return encode_png(OUTLINE_SIZE, OUTLINE_SIZE, outline_icon_pixels(), alpha=True)


def _blend(background: Sequence[int], foreground: Sequence[int], alpha: int) -> Pixel:
    return tuple((b * (255 - alpha) + f * alpha + 127) // 255 for b, f in zip(background, foreground, strict=True))


def write_icons(color_path: Path = COLOR_ICON, outline_path: Path = OUTLINE_ICON) -> list[Path]:
    color_path.write_bytes(color_icon_png())
    outline_path.write_bytes(outline_icon_png())
    return [color_path, outline_path]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m manifest.icons",
        description="Redraw tapbot's Teams icons (color.png 192×192, outline.png 32×32) in manifest/.",
    )
    parser.parse_args(argv)
    for path in write_icons():
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
