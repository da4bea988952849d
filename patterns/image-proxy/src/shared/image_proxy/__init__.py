"""The image proxy's shared code (a Lambda layer): image facts, thumbnails, S3 events, the image table."""

from image_proxy.events import ObjectCreated, objects_created
from image_proxy.images import (
    ImageFacts,
    RejectedImageError,
    analyse,
    difference_hash,
    open_image,
    thumbnail,
)
from image_proxy.store import ImageTable

__all__ = [
    "ImageFacts",
    "ImageTable",
    "ObjectCreated",
    "RejectedImageError",
    "analyse",
    "difference_hash",
    "objects_created",
    "open_image",
    "thumbnail",
]
