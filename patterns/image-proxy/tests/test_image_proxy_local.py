"""The image proxy end to end on localcloud, over real HTTP: uploads through the API's S3
integration, S3 -> SNS -> thumbnailer + analyzer, the listing through the DynamoDB integration,
thumbnails through the S3 integration; bad uploads; a redelivered notification."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from image_samples import bomb_png_bytes, jpeg_bytes, png_bytes, rotated_jpeg_bytes
from PIL import Image

from localcloud import LocalCloud

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
STACK = "image-proxy-test"
PARAMETERS = {"ThumbnailSizes": "64,256", "MaxImagePixels": "1000000"}
T = TypeVar("T")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def wait_for(condition: Callable[[], T | None], timeout: float = 90.0, what: str = "condition") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


class FinishedInvocations:
    """Counts finished invocations (and failed ones) per function, from the runtime's observer hooks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.finished: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    def invocation_started(self, function_name: str) -> None:
        """Not counted: only finished invocations matter here."""

    def invocation_throttled(self, function_name: str) -> None:
        """Throttled attempts are retried by the async queue and counted when they finish."""

    def invocation_finished(self, function_name: str, result: Any) -> None:
        """Count one finished invocation."""
        with self._lock:
            self.finished[function_name] += 1
            if result is None or not result.ok:
                self.failed[function_name] += 1

    def log_lines(self, function_name: str, lines: list[str]) -> None:
        """Logs are not needed."""


class Stack:
    """The deployed pattern and what the tests use of it."""

    def __init__(self, cloud: LocalCloud, outputs: dict[str, str], functions: dict[str, str]) -> None:
        self.cloud = cloud
        self.outputs = outputs
        self.url = cloud.api_gateway.local_url(outputs["ApiUrl"])
        self.functions = functions  # logical id -> function name
        self.invocations = FinishedInvocations()
        cloud.runtime.add_observer(self.invocations)

    def upload(self, name: str, data: bytes | Iterator[bytes], content_type: str | None) -> requests.Response:
        headers = {"Content-Type": content_type} if content_type else {}
        return requests.put(f"{self.url}/images/{name}", data=data, headers=headers, timeout=60)

    def listing(self) -> dict[str, dict[str, Any]]:
        images: dict[str, dict[str, Any]] = {}
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            answer = requests.get(f"{self.url}/images", params=params, timeout=60)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            images.update({image["name"]: image for image in page["images"]})
            cursor = page["nextCursor"]
            if not cursor:
                return images

    def processed(self, names: set[str]) -> dict[str, dict[str, Any]] | None:
        """The listing once every name has both its analysis and its thumbnail result."""
        images = self.listing()
        done = all(
            images.get(n, {}).get("status") and images.get(n, {}).get("thumbnailStatus") for n in names
        )
        if done and all(images[n]["status"] == "rejected" or images[n]["analysis"] for n in names):
            return images
        return None

    def table_item(self, name: str) -> dict[str, Any]:
        dynamodb = self.cloud.client("dynamodb")
        item: dict[str, Any] = dynamodb.get_item(
            TableName=self.outputs["ImageTableName"], Key={"name": {"S": name}}
        ).get("Item", {})
        return item

    def keys(self, bucket_output: str) -> dict[str, str]:
        listing = self.cloud.client("s3").list_objects_v2(Bucket=self.outputs[bucket_output])
        return {item["Key"]: item["ETag"] for item in listing.get("Contents", [])}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with LocalCloud() as cloud:
        result = cloud.deploy(TEMPLATE, STACK, parameters=PARAMETERS)
        functions = {source.logical_id: source.function_name for source in result.functions.values()}
        yield Stack(cloud, result.outputs, functions)


@pytest.fixture(scope="module")
def uploaded(stack: Stack) -> dict[str, dict[str, Any]]:
    """A PNG, a JPEG with EXIF rotation, a too-large image, then a re-encoded copy of the PNG."""
    for name, data, content_type in [
        ("landscape.png", png_bytes(1), "image/png"),
        ("sideways.jpg", rotated_jpeg_bytes(2), "image/jpeg"),
        ("bomb.png", bomb_png_bytes(1200), "image/png"),  # 1.44 million pixels, the limit is 1 million
        ("disguised.png", b"GIF89a? no, just text", "image/png"),
    ]:
        answer = stack.upload(name, data, content_type)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "uploaded"
    # The copy goes up once the original is analysed, so which one is the duplicate is settled.
    wait_for(lambda: stack.processed({"landscape.png"}), what="the original's analysis")
    assert stack.upload("copy.jpg", jpeg_bytes(1, quality=70), "image/jpeg").status_code == 202
    names = {"landscape.png", "sideways.jpg", "bomb.png", "disguised.png", "copy.jpg"}
    return wait_for(lambda: stack.processed(names), what="every upload processed")


def test_png_is_analysed_and_thumbnailed(stack, uploaded):
    image = uploaded["landscape.png"]
    assert image["status"] == "analysed"
    assert (image["format"], image["width"], image["height"]) == ("PNG", 320, 200)
    assert image["size"] == len(png_bytes(1))
    assert image["analysis"]["duplicateOf"] is None
    assert len(image["analysis"]["phash"]) == 16
    assert image["analysis"]["colours"]
    assert image["thumbnails"] == {
        "64": "/thumbnails/64/landscape.png",
        "256": "/thumbnails/256/landscape.png",
    }
    thumb = requests.get(stack.url + image["thumbnails"]["256"], timeout=60)
    assert thumb.status_code == 200
    assert thumb.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (256, 160)


def test_exif_rotation_is_applied_and_metadata_stripped(stack, uploaded):
    image = uploaded["sideways.jpg"]
    # Stored 320x200, displayed (and measured) 200x320
    assert (image["format"], image["width"], image["height"]) == ("JPEG", 200, 320)
    assert image["analysis"]["camera"] == "Acme Roadster 3"
    assert image["analysis"]["takenAt"] == "2026-05-17T08:30:00"
    thumb = requests.get(stack.url + image["thumbnails"]["256"], timeout=60)
    assert thumb.status_code == 200
    picture = Image.open(io.BytesIO(thumb.content))
    assert picture.size == (160, 256)  # portrait: the orientation was applied
    assert not picture.getexif()  # no camera, no GPS, no orientation to apply twice
    # GPS is personal data: not recorded unless KeepGpsData is true
    exif = stack.table_item("sideways.jpg")["exif"]["M"]
    assert "gps" not in exif
    assert exif["gpsStripped"] == {"BOOL": True}


def test_a_re_encoded_copy_is_flagged_as_duplicate(uploaded):
    copy = uploaded["copy.jpg"]
    assert copy["status"] == "analysed"
    assert copy["analysis"]["duplicateOf"] == "landscape.png"
    assert copy["analysis"]["phash"] == uploaded["landscape.png"]["analysis"]["phash"]
    assert uploaded["sideways.jpg"]["analysis"]["duplicateOf"] is None


def test_images_that_cannot_be_processed_are_recorded_not_retried(stack, uploaded):
    bomb, disguised = uploaded["bomb.png"], uploaded["disguised.png"]
    assert bomb["status"] == "rejected"
    assert bomb["reason"].startswith("too many pixels")
    assert bomb["thumbnailStatus"] == "refused"
    assert disguised["status"] == "rejected"
    assert disguised["reason"] == "not an image"
    assert bomb["thumbnails"] == disguised["thumbnails"] == {}
    thumbnails = stack.keys("ThumbnailBucketName")
    assert not [key for key in thumbnails if key.endswith(("bomb.png", "disguised.png"))]
    # Each function ran once per upload, none failed, so nothing reached a failure destination
    assert not stack.invocations.failed
    sqs = stack.cloud.client("sqs")
    for queue in ("ThumbnailerFailuresUrl", "AnalyzerFailuresUrl"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=stack.outputs[queue], AttributeNames=["ApproximateNumberOfMessages"]
        )
        assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_bad_uploads_get_4xx_and_leave_nothing_behind(stack, uploaded):
    raw_before = stack.keys("RawBucketName")
    attempts = {
        "notes.txt": (b"hello", "text/plain"),  # not an image type: 415
        "untyped.png": (png_bytes(6), None),  # no Content-Type: 400
        "program.exe": (png_bytes(7), "image/png"),  # not an image name: 400
        # Over API Gateway's 10 MB payload limit; sent chunked, so the front door reads up to its
        # limit and refuses while the few bytes past it are still in flight
        "huge.png": (_chunks(b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024 + 1024)), "image/png"),
    }
    statuses = {}
    for name, (data, content_type) in attempts.items():
        answer = stack.upload(name, data, content_type)
        statuses[name] = answer.status_code
        assert answer.json()["message"]
    assert statuses["notes.txt"] == 415
    assert statuses["untyped.png"] == 400
    assert statuses["program.exe"] == 400
    assert 400 <= statuses["huge.png"] < 500
    # Nothing was stored, so nothing was notified or recorded
    assert stack.keys("RawBucketName") == raw_before
    for name in attempts:
        assert stack.table_item(name) == {}
        answer = requests.get(f"{stack.url}/images/{name}", timeout=60)
        assert answer.status_code == 404
        assert answer.json() == {"message": "no such image"}


def test_a_redelivered_notification_changes_nothing(stack, uploaded):
    # Given the state after the original notification for the rotated JPEG
    name, key = "sideways.jpg", "uploads/sideways.jpg"
    item_before = stack.table_item(name)
    thumbnails_before = stack.keys("ThumbnailBucketName")
    bytes_before = {k: _object(stack, k) for k in thumbnails_before if k.endswith(name)}
    head = stack.cloud.client("s3").head_object(Bucket=stack.outputs["RawBucketName"], Key=key)
    finished = {fn: stack.invocations.finished[fn] for fn in stack.functions.values()}

    # When S3's notification for it arrives again (same object, same event time)
    event = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": item_before["uploadedAt"]["S"],
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": stack.outputs["RawBucketName"]},
                    "object": {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"')},
                },
            }
        ]
    }
    stack.cloud.client("sns").publish(TopicArn=stack.outputs["UploadTopicArn"], Message=json.dumps(event))
    wait_for(
        lambda: all(stack.invocations.finished[fn] > count for fn, count in finished.items()),
        what="both functions to handle the redelivery",
    )

    # Then the item, the thumbnails' keys and their bytes are exactly as before
    assert not stack.invocations.failed
    assert stack.table_item(name) == item_before
    assert stack.keys("ThumbnailBucketName").keys() == thumbnails_before.keys()
    assert {k: _object(stack, k) for k in bytes_before} == bytes_before


def _chunks(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _object(stack: Stack, key: str) -> bytes:
    body: bytes = (
        stack.cloud.client("s3")
        .get_object(Bucket=stack.outputs["ThumbnailBucketName"], Key=key)["Body"]
        .read()
    )
    return body
