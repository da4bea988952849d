"""What the functions compute from an image, with Pillow; no AWS here.

Every refusal is a :class:`RejectedImageError` with a reason the functions record: an upload that is
not an image, or is too large to decode safely, will never succeed, so retrying it is pointless.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

# Formats the API accepts; anything else that decodes is still refused.
ACCEPTED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
_HASH_SIZE = 8  # a 64-bit difference hash


class RejectedImageError(Exception):
    """An upload that can never be processed; ``reason`` is recorded, not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageFacts:
    """Facts computed from the image itself."""

    format: str
    width: int  # as displayed, after EXIF orientation
    height: int
    phash: str  # 16 hex digits: the difference hash
    colours: list[str]  # dominant colours, "#rrggbb", most common first
    exif: dict[str, Any] = field(default_factory=dict)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Decode ``data``; refuses non-images, unaccepted formats and images over ``max_pixels``."""
    # Pillow only warns between its limit and twice it; here any image over the limit is refused.
    Image.MAX_IMAGE_PIXELS = max_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise RejectedImageError(f"format {image.format} is not accepted")
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise RejectedImageError(f"too many pixels (limit {max_pixels}): {exc}") from exc
        except UnidentifiedImageError as exc:
            raise RejectedImageError("not an image") from exc
        except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
            raise RejectedImageError(f"cannot decode: {exc}") from exc
    return image


def thumbnail(image: Image.Image, size: int) -> bytes:
    """A JPEG at most ``size`` pixels on its longer side, upright, without metadata.

    The same source always gives the same bytes, so a redelivered notification rewrites an
    identical thumbnail.
    """
    upright = ImageOps.exif_transpose(image)
    upright.thumbnail((size, size), Image.Resampling.LANCZOS)
    if upright.mode in ("RGBA", "LA", "P"):
        # Transparent pixels on white: JPEG has no alpha.
        rgba = upright.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        upright = flat
    elif upright.mode != "RGB":
        upright = upright.convert("RGB")
    out = io.BytesIO()
    # No exif= / icc_profile= arguments: the thumbnail carries no metadata (no GPS, no camera).
    upright.save(out, format="JPEG", quality=85, optimize=True)
    return out.getvalue()


def difference_hash(image: Image.Image) -> str:
    """A perceptual (difference) hash: 64 bits from the brightness gradient of a 9x8 grey image.

    Re-encoding, resizing or recompressing an image leaves it (nearly always) unchanged, so equal
    hashes flag duplicates. Written here rather than taken from ``imagehash``, which would bring
    numpy, scipy and PyWavelets into the function package for these few lines.
    """
    grey = (
        ImageOps.exif_transpose(image)
        .convert("L")
        .resize((_HASH_SIZE + 1, _HASH_SIZE), Image.Resampling.LANCZOS)
    )
    pixels = grey.tobytes()  # mode "L": one byte per pixel, row by row
    bits = 0
    for row in range(_HASH_SIZE):
        for col in range(_HASH_SIZE):
            left = pixels[row * (_HASH_SIZE + 1) + col]
            right = pixels[row * (_HASH_SIZE + 1) + col + 1]
            bits = (bits << 1) | (1 if left > right else 0)
    return f"{bits:016x}"


def dominant_colours(image: Image.Image, count: int = 3) -> list[str]:
    """The most common colours after quantising to a small palette, as ``#rrggbb``."""
    small = image.convert("RGB")
    small.thumbnail((64, 64))
    palette_image = small.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    palette = palette_image.getpalette() or []
    counts = sorted(palette_image.getcolors() or [], reverse=True)
    colours = []
    for _, index in counts[:count]:
        if not isinstance(index, int):  # a palette image's colours are palette indexes
            continue
        r, g, b = palette[index * 3 : index * 3 + 3]
        colours.append(f"#{r:02x}{g:02x}{b:02x}")
    return colours


def exif_summary(image: Image.Image, *, keep_gps: bool) -> dict[str, Any]:
    """Camera, time taken and orientation from EXIF; GPS only when ``keep_gps``."""
    exif = image.getexif()
    if not exif:
        return {}
    summary: dict[str, Any] = {}
    make = str(exif.get(ExifTags.Base.Make, "")).strip("\x00 ")
    model = str(exif.get(ExifTags.Base.Model, "")).strip("\x00 ")
    if make or model:
        summary["camera"] = " ".join(part for part in (make, model) if part)
    taken = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal) or exif.get(
        ExifTags.Base.DateTime
    )
    if taken:
        try:
            summary["takenAt"] = datetime.strptime(str(taken).strip("\x00 "), "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            summary["takenAt"] = str(taken)
    orientation = exif.get(ExifTags.Base.Orientation)
    if orientation:
        summary["orientation"] = int(orientation)
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    if gps:
        if keep_gps:
            summary["gps"] = {ExifTags.GPSTAGS.get(k, str(k)): str(v) for k, v in gps.items()}
        else:
            summary["gpsStripped"] = True
    return summary


def analyse(image: Image.Image, *, keep_gps: bool) -> ImageFacts:
    """Format, displayed dimensions, EXIF, dominant colours and perceptual hash."""
    upright = ImageOps.exif_transpose(image)
    return ImageFacts(
        format=str(image.format),
        width=upright.width,
        height=upright.height,
        phash=difference_hash(image),
        colours=dominant_colours(upright),
        exif=exif_summary(image, keep_gps=keep_gps),
    )
