"""The analyzer: real facts from each uploaded image, written to the image table.

Format, displayed dimensions, EXIF (camera, time taken; GPS only with ``KEEP_GPS=true``), dominant
colours and a perceptual hash; an image whose hash matches an earlier upload is flagged
``duplicateOf`` it. With ``DETECT_LABELS=true``, Amazon Rekognition's labels too, marked as a stand-in
when the endpoint is a local emulator. Uploads that are not images are recorded as ``rejected``
with the reason, not retried. Everything is derived from the upload and the notification (no
clocks), so a redelivered notification writes the same values again.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from image_proxy.events import objects_created
from image_proxy.images import RejectedImageError, analyse, open_image
from image_proxy.settings import Settings
from image_proxy.store import ImageTable

logger = Logger()


@cache
def _settings() -> Settings:
    return Settings.from_environment()


@cache
def _clients() -> tuple[Any, ImageTable]:
    return boto3.client("s3"), ImageTable(boto3.client("dynamodb"), _settings().image_table)


@cache
def _rekognition() -> Any:
    return boto3.client("rekognition")


def detect_labels(settings: Settings, bucket: str, key: str) -> dict[str, Any]:
    """Amazon Rekognition's labels for the object, saying where they came from.

    Behind a local endpoint (an emulator such as localcloud, whose Rekognition is moto's) the
    answer is a fixed stand-in, so it is recorded as such and never passed off as analysis.
    """
    answer = _rekognition().detect_labels(
        Image={"S3Object": {"Bucket": bucket, "Name": key}}, MaxLabels=10, MinConfidence=80
    )
    names = [str(label["Name"]) for label in answer.get("Labels", [])]
    if settings.local_endpoint:
        return {"source": "local stand-in: fixed labels, not an analysis of this image", "names": names}
    return {"source": "Amazon Rekognition", "names": names}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Analyse every image in the notification."""
    settings = _settings()
    s3, table = _clients()
    results: dict[str, str] = {}
    for created in objects_created(event):
        name = settings.image_name(created.key)
        data = s3.get_object(Bucket=created.bucket, Key=created.key)["Body"].read()
        try:
            facts = analyse(open_image(data, settings.max_image_pixels), keep_gps=settings.keep_gps)
        except RejectedImageError as exc:
            logger.info("image rejected", extra={"image": name, "reason": exc.reason})
            table.record_rejection(name, created, exc.reason)
            results[name] = "rejected"
            continue
        labels = detect_labels(settings, created.bucket, created.key) if settings.detect_labels else None
        if not table.record_analysis(name, created, facts, labels):
            results[name] = "stale"  # a newer upload of this name is already recorded
            continue
        # The hash is stored first, so of two identical uploads analysed at once the later one
        # finds the earlier one.
        original = table.original_of(name, facts.phash, created.event_time)
        table.record_duplicate(name, created, original)
        results[name] = f"duplicate of {original}" if original else "analysed"
        logger.info("image analysed", extra={"image": name, "phash": facts.phash, "duplicateOf": original})
    return {"images": results}
