"""When the image table is unavailable, each function fails, is retried by Lambda's asynchronous
queue, and ends in its own failure destination with the notification it could not handle."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from image_samples import png_bytes

from localcloud import LocalCloud

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _records(cloud: LocalCloud, queue_url: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    """The invocation records in a failure queue, waiting (bounded) until there is one."""
    sqs = cloud.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if messages.get("Messages"):
            return [json.loads(m["Body"]) for m in messages["Messages"]]
    raise AssertionError(f"nothing reached {queue_url} in {timeout} s")


def test_each_function_fails_into_its_own_destination_after_retries():
    # Short retry delays: Lambda's asynchronous retries happen about 1 and 2 minutes apart on AWS.
    with LocalCloud(async_retry_delays=(0.2, 0.2)) as cloud:
        outputs = cloud.deploy(TEMPLATE, "image-proxy-outage").outputs
        url = cloud.api_gateway.local_url(outputs["ApiUrl"])
        # Given the image table is gone (an outage both functions need to write through)
        cloud.client("dynamodb").delete_table(TableName=outputs["ImageTableName"])

        # When an image is uploaded
        answer = requests.put(
            f"{url}/images/outage.png", data=png_bytes(9), headers={"Content-Type": "image/png"}, timeout=60
        )
        assert answer.status_code == 202

        # Then each function's failure queue gets Lambda's record of its three failed attempts,
        # with the S3 notification (inside SNS) it could not handle
        for queue, function in (
            ("ThumbnailerFailuresUrl", "Thumbnailer"),
            ("AnalyzerFailuresUrl", "Analyzer"),
        ):
            (record,) = _records(cloud, outputs[queue])
            assert function in record["requestContext"]["functionArn"]
            assert record["requestContext"]["condition"] == "RetriesExhausted"
            assert record["requestContext"]["approximateInvokeCount"] == 3
            message = json.loads(record["requestPayload"]["Records"][0]["Sns"]["Message"])
            assert message["Records"][0]["s3"]["object"]["key"] == "uploads/outage.png"
        # And the thumbnail was still written before the table write failed: retries rewrote the same key
        keys = cloud.client("s3").list_objects_v2(Bucket=outputs["ThumbnailBucketName"]).get("Contents", [])
        assert sorted(item["Key"] for item in keys) == ["128/outage.png", "512/outage.png"]
