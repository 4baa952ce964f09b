"""The two icons: Teams' sizes and transparency rules, and that the committed files are what the generator draws."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from manifest import ACCENT_COLOR, ACCENT_RGB, COLOR_ICON, OUTLINE_ICON
from manifest.icons import (
    COLOR_GLYPH_BOX,
    COLOR_SIZE,
    OUTLINE_SIZE,
    color_icon_pixels,
    outline_icon_pixels,
    write_icons,
)
from manifest.png import encode_png, png_size
from tests.manifest.png_reader import PngError, PngImage, read_png

WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def color() -> PngImage:
    return read_png(COLOR_ICON.read_bytes())


@pytest.fixture(scope="module")
def outline() -> PngImage:
    return read_png(OUTLINE_ICON.read_bytes())


def test_the_color_icon_is_192_square_and_opaque(color: PngImage) -> None:
    assert (color.width, color.height) == (COLOR_SIZE, COLOR_SIZE) == (192, 192)
    assert all(alpha == 255 for *_, alpha in color.pixels)


def test_the_color_icon_is_the_white_glyph_on_the_accent_colour_inside_the_safe_area(color: PngImage) -> None:
    assert "#{:02X}{:02X}{:02X}".format(*ACCENT_RGB) == ACCENT_COLOR
    low, high = (COLOR_SIZE - COLOR_GLYPH_BOX) // 2, (COLOR_SIZE + COLOR_GLYPH_BOX) // 2
    for y in range(COLOR_SIZE):
        for x in range(COLOR_SIZE):
            if not (low <= x < high and low <= y < high):
                assert color.pixel(x, y)[:3] == ACCENT_RGB, (x, y)
    safe_area = [color.pixel(x, y)[:3] for y in range(low, high) for x in range(low, high)]
    white_share = safe_area.count(WHITE) / len(safe_area)
    assert 0.3 < white_share < 0.8, white_share  # a solid glyph, not a speck and not a white square
    # Every pixel is the accent colour, white, or an anti-aliasing blend of both: no stray colours.
    for red, green, blue, _ in color.pixels:
        assert all(min(a, 255) <= c <= max(a, 255) for c, a in zip((red, green, blue), ACCENT_RGB, strict=True))


def test_the_outline_icon_is_32_square_white_on_transparent(outline: PngImage) -> None:
    assert (outline.width, outline.height) == (OUTLINE_SIZE, OUTLINE_SIZE) == (32, 32)
    assert outline.color_type == 6  # it has an alpha channel
    for x, y in ((0, 0), (31, 0), (0, 31), (31, 31)):
        assert outline.pixel(x, y)[3] == 0, (x, y)
    for red, green, blue, alpha in outline.pixels:
        assert alpha == 0 or (red, green, blue) == WHITE, (red, green, blue, alpha)
    alphas = [pixel[3] for pixel in outline.pixels]
    assert alphas.count(255) > 200, "the glyph should be mostly solid white"
    assert alphas.count(0) > 200, "the background should be mostly transparent"


def test_the_committed_icons_are_what_the_generator_draws(color: PngImage, outline: PngImage) -> None:
    # Pixels, not bytes: another zlib build may compress the same pixels differently.
    assert [pixel[:3] for pixel in color.pixels] == color_icon_pixels()
    assert list(outline.pixels) == outline_icon_pixels()


def test_the_generator_writes_readable_pngs(tmp_path: Path) -> None:
    color_path, outline_path = write_icons(tmp_path / "c.png", tmp_path / "o.png")
    assert read_png(color_path.read_bytes()).pixels == read_png(COLOR_ICON.read_bytes()).pixels
    assert read_png(outline_path.read_bytes()).pixels == read_png(OUTLINE_ICON.read_bytes()).pixels
    assert png_size(color_path.read_bytes()) == (192, 192)
    assert png_size(outline_path.read_bytes()) == (32, 32)


@pytest.mark.parametrize("alpha", [False, True])
def test_the_png_writer_round_trips_through_an_independent_reader(alpha: bool) -> None:
    generator = random.Random(7)
    width, height = 5, 3
    channels = 4 if alpha else 3
    pixels = [tuple(generator.randrange(256) for _ in range(channels)) for _ in range(width * height)]
    image = read_png(encode_png(width, height, pixels, alpha=alpha))
    assert (image.width, image.height) == (width, height)
    assert image.chunk_types == ("IHDR", "IDAT", "IEND")
    expected = [(*pixel, 255) if not alpha else pixel for pixel in pixels]
    assert list(image.pixels) == expected


def test_the_png_writer_refuses_bad_pixels() -> None:
    with pytest.raises(ValueError, match="expected 4 pixels"):
        encode_png(2, 2, [(0, 0, 0)], alpha=False)
    with pytest.raises(ValueError, match="not 3 channels"):
        encode_png(1, 1, [(0, 0, 0, 0)], alpha=False)
    with pytest.raises(ValueError, match="not 4 channels"):
        encode_png(1, 1, [(0, 0, 256, 0)], alpha=True)
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))


def test_the_reader_rejects_a_corrupted_file() -> None:
    data = bytearray(COLOR_ICON.read_bytes())
    data[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    with pytest.raises(PngError, match="CRC"):
        read_png(bytes(data))
