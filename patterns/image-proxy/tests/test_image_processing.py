"""The image logic the functions share, without AWS: decoding, refusals, thumbnails, analysis."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from image_proxy.events import objects_created
from image_proxy.images import RejectedImageError, analyse, difference_hash, open_image, thumbnail
from image_samples import bomb_png_bytes, jpeg_bytes, png_bytes, rotated_jpeg_bytes
from PIL import Image

LIMIT = 50_000_000


def test_thumbnail_is_upright_small_deterministic_and_without_metadata():
    # Given a JPEG stored 320x200 whose EXIF says to display it rotated (so 200x320)
    image = open_image(rotated_jpeg_bytes(1), LIMIT)

    # When a 128-pixel thumbnail is made twice
    first, second = thumbnail(image, 128), thumbnail(open_image(rotated_jpeg_bytes(1), LIMIT), 128)

    # Then it is portrait (the orientation applied), at most 128 on its longer side, byte-identical
    thumb = Image.open(io.BytesIO(first))
    assert thumb.format == "JPEG"
    assert thumb.size == (80, 128)
    assert first == second
    # And it carries no EXIF (no camera, no GPS) and no orientation left to apply twice
    assert not thumb.getexif()
    assert "exif" not in thumb.info


def test_analysis_reports_displayed_size_exif_and_strips_gps_unless_allowed():
    image = open_image(rotated_jpeg_bytes(2), LIMIT)

    facts = analyse(image, keep_gps=False)

    assert (facts.format, facts.width, facts.height) == ("JPEG", 200, 320)
    assert facts.exif["camera"] == "Acme Roadster 3"
    assert facts.exif["takenAt"] == "2026-05-17T08:30:00"
    assert facts.exif["orientation"] == 6
    assert facts.exif["gpsStripped"] is True
    assert "gps" not in facts.exif
    assert len(facts.colours) >= 1
    assert all(c.startswith("#") and len(c) == 7 for c in facts.colours)
    with_gps = analyse(open_image(rotated_jpeg_bytes(2), LIMIT), keep_gps=True)
    assert with_gps.exif["gps"]["GPSLatitudeRef"] == "N"


def test_perceptual_hash_survives_reencoding_and_tells_images_apart():
    original = difference_hash(open_image(png_bytes(3), LIMIT))
    # The same picture as a lower-quality JPEG, and at half the size
    assert difference_hash(open_image(jpeg_bytes(3, quality=60), LIMIT)) == original
    assert difference_hash(open_image(png_bytes(3, size=(160, 100)), LIMIT)) == original
    # Another picture hashes differently
    assert difference_hash(open_image(png_bytes(4), LIMIT)) != original


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"just some text, not an image", "not an image"),
        (png_bytes(5)[:200], "cannot decode"),  # truncated
    ],
)
def test_non_images_are_refused_with_a_reason(data, reason):
    with pytest.raises(RejectedImageError) as refused:
        open_image(data, LIMIT)
    assert refused.value.reason.startswith(reason)


def test_too_many_pixels_is_refused_before_decoding():
    # 1200 x 1200 = 1.44 million pixels against a limit of 1 million (Pillow alone would only warn
    # below twice its limit; the refusal must not depend on that)
    data = bomb_png_bytes(1200)
    with pytest.raises(RejectedImageError) as refused:
        open_image(data, 1_000_000)
    assert refused.value.reason.startswith("too many pixels")
    assert open_image(data, 2_000_000).size == (1200, 1200)


def test_sample_events_parse_as_the_functions_read_them():
    events = Path(__file__).resolve().parents[1] / "events"
    created = objects_created(json.loads((events / "sns_s3_object_created.json").read_text()))
    assert [(c.key, c.size, c.event_time) for c in created] == [
        ("uploads/summit at dawn.jpg", 48213, "2026-05-17T08:30:00.123Z")
    ]
    # S3's test event (sent when the notification is configured) carries no object
    assert objects_created(json.loads((events / "sns_s3_test_event.json").read_text())) == []
