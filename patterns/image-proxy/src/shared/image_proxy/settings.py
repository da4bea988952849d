"""The functions' settings, read from their environment once per cold start."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    """What the template passes to the functions."""

    image_table: str
    thumbnail_bucket: str
    thumbnail_sizes: tuple[int, ...]
    max_image_pixels: int
    keep_gps: bool
    upload_prefix: str
    detect_labels: bool = False
    # Set by local emulators (localcloud) and never on AWS: labels then come from a stand-in.
    local_endpoint: str = ""

    @classmethod
    def from_environment(cls) -> Settings:
        """Read and check the environment; a bad value fails the cold start loudly."""
        sizes = tuple(
            int(part) for part in os.environ.get("THUMBNAIL_SIZES", "256").split(",") if part.strip()
        )
        if not sizes or min(sizes) < 1:
            raise ValueError(
                f"THUMBNAIL_SIZES must list positive sizes, not {os.environ.get('THUMBNAIL_SIZES')!r}"
            )
        return cls(
            image_table=os.environ["IMAGE_TABLE"],
            thumbnail_bucket=os.environ.get("THUMBNAIL_BUCKET", ""),
            thumbnail_sizes=sizes,
            max_image_pixels=int(os.environ.get("MAX_IMAGE_PIXELS", "50000000")),
            keep_gps=os.environ.get("KEEP_GPS", "false").lower() == "true",
            upload_prefix=os.environ.get("UPLOAD_PREFIX", "uploads/"),
            detect_labels=os.environ.get("DETECT_LABELS", "false").lower() == "true",
            local_endpoint=os.environ.get("AWS_ENDPOINT_URL", ""),
        )

    def image_name(self, key: str) -> str:
        """The image's name (the API's ``{name}``) from its raw object key."""
        return key.removeprefix(self.upload_prefix)
