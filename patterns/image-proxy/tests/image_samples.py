"""Test images made with Pillow: distinct patterns (a flat colour would hash like any other flat
colour), a JPEG whose EXIF says "rotate 90 degrees" with a camera, a date and a GPS position."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw

ORIENTATION_ROTATE_90_CW = 6  # EXIF Orientation 6: display rotated 90 degrees clockwise


def pattern(seed: int, size: tuple[int, int] = (320, 200)) -> Image.Image:
    """An RGB image with a gradient and stripes that depend on ``seed``."""
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    width, height = size
    for x in range(width):
        shade = (x * 255 // width + seed * 40) % 256
        draw.line([(x, 0), (x, height)], fill=(shade, (seed * 70) % 256, 255 - shade))
    for stripe in range(seed % 5 + 2):
        top = stripe * height // (seed % 5 + 2)
        draw.rectangle([(0, top), (width // (stripe + 2), top + height // 12)], fill=(250, 250, 250))
    return image


def png_bytes(seed: int, size: tuple[int, int] = (320, 200)) -> bytes:
    """A PNG of :func:`pattern`."""
    out = io.BytesIO()
    pattern(seed, size).save(out, format="PNG")
    return out.getvalue()


def jpeg_bytes(seed: int, size: tuple[int, int] = (320, 200), quality: int = 90) -> bytes:
    """A JPEG of :func:`pattern`, without EXIF."""
    out = io.BytesIO()
    pattern(seed, size).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def rotated_jpeg_bytes(seed: int) -> bytes:
    """A 320x200 JPEG stored sideways whose EXIF says to show it rotated: displayed 200x320."""
    image = pattern(seed)
    exif = Image.Exif()
    exif[0x0112] = ORIENTATION_ROTATE_90_CW  # Orientation
    exif[0x010F] = "Acme"  # Make
    exif[0x0110] = "Roadster 3"  # Model
    exif[0x0132] = "2026:05:17 08:30:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"  # GPSLatitudeRef
    gps[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90, exif=exif)
    return out.getvalue()


def bomb_png_bytes(side: int) -> bytes:
    """A tiny file that decodes to ``side`` x ``side`` pixels (1 bit each: cheap to make here)."""
    out = io.BytesIO()
    Image.new("1", (side, side)).save(out, format="PNG", optimize=True)
    return out.getvalue()
