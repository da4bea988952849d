"""The thumbnailer: one upright, metadata-free JPEG per configured size for each uploaded image.

Subscribed to the raw bucket's topic. Thumbnail keys are ``<size>/<name>``: the same upload always
gives the same keys and bytes, so a redelivered notification rewrites identical objects. An upload
that is not an image, or has more pixels than ``MAX_IMAGE_PIXELS``, is recorded as refused with its
reason and the invocation succeeds: retrying would fail the same way. Anything else (S3 or DynamoDB
unavailable) raises, and Lambda's asynchronous retries and the failure destination take over.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_proxy.events import objects_created
from image_proxy.images import RejectedImageError, open_image, thumbnail
from image_proxy.settings import Settings
from image_proxy.store import ImageTable

logger = Logger()


@cache
def _settings() -> Settings:
    return Settings.from_environment()


@cache
def _clients() -> tuple[Any, ImageTable]:
    return boto3.client("s3"), ImageTable(boto3.client("dynamodb"), _settings().image_table)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Make the thumbnails of every image in the notification."""
    settings = _settings()
    s3, table = _clients()
    made: dict[str, dict[str, str]] = {}
    for created in objects_created(event):
        name = settings.image_name(created.key)
        data = s3.get_object(Bucket=created.bucket, Key=created.key)["Body"].read()
        try:
            image = open_image(data, settings.max_image_pixels)
        except RejectedImageError as exc:
            logger.info("thumbnail refused", extra={"image": name, "reason": exc.reason})
            table.record_thumbnail_refusal(name, created, exc.reason)
            continue
        keys: dict[str, str] = {}
        for size in settings.thumbnail_sizes:
            key = f"{size}/{name}"
            s3.put_object(
                Bucket=settings.thumbnail_bucket,
                Key=key,
                Body=thumbnail(image, size),
                ContentType="image/jpeg",
            )
            keys[str(size)] = key
        table.record_thumbnails(name, created, keys)
        made[name] = keys
        logger.info("thumbnails written", extra={"image": name, "keys": keys})
    return {"thumbnails": made}
