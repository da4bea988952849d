"""S3 bucket notifications as AWS sends them: prefix and suffix filter rules together, the event
record's shape (key encoding, sequencer, identities), and the SNS envelope's subject."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "s3_notifications" / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, dict[str, Any]]]:
    with LocalCloud() as cloud:
        result = cloud.deploy(TEMPLATE, "s3n")
        yield cloud, result.outputs


def _drain(cloud: LocalCloud, queue_url: str, expected: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Messages from the queue (S3's test event left out) until ``expected`` arrived; bounded wait."""
    sqs = cloud.client("sqs")
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            inner = json.loads(body["Message"]) if "TopicArn" in body else body
            if inner.get("Event") != "s3:TestEvent":
                found.append(body)
    return found


def test_prefix_and_suffix_rules_both_apply_and_records_have_aws_shape(stack):
    cloud, outputs = stack
    s3 = cloud.client("s3")
    bucket = outputs["BucketName"]
    # Given keys that match the topic's rules (photos/ and .jpg), the queue's (.png), or neither
    for key in ["photos/summit at dawn.jpg", "photos/c.png", "other/d.jpg", "photos/e.jpeg", "x/f.png"]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"12345")
    s3.put_object(Bucket=bucket, Key="photos/later.jpg", Body=b"123")

    # Then the topic (through its SQS subscriber) gets exactly the photos/*.jpg ones, in SNS envelopes
    via_topic = _drain(cloud, outputs["TopicInboxUrl"], expected=2)
    assert all(envelope["Subject"] == "Amazon S3 Notification" for envelope in via_topic)
    records = [json.loads(envelope["Message"])["Records"][0] for envelope in via_topic]
    assert sorted(unquote_plus(r["s3"]["object"]["key"]) for r in records) == [
        "photos/later.jpg",
        "photos/summit at dawn.jpg",
    ]
    # And the queue exactly the *.png ones, whatever their prefix
    to_queue = [body["Records"][0] for body in _drain(cloud, outputs["PngQueueUrl"], expected=2)]
    assert sorted(unquote_plus(r["s3"]["object"]["key"]) for r in to_queue) == ["photos/c.png", "x/f.png"]
    assert _drain(cloud, outputs["TopicInboxUrl"], expected=1, timeout=2) == []

    # And a record is shaped as AWS documents it: the key URL-encoded with "+" for spaces but "/" kept
    record = next(r for r in records if "summit" in r["s3"]["object"]["key"])
    assert record["s3"]["object"]["key"] == "photos/summit+at+dawn.jpg"
    assert record["eventSource"] == "aws:s3"
    assert record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == "us-east-1"
    assert record["s3"]["bucket"]["name"] == bucket
    assert record["s3"]["bucket"]["arn"] == f"arn:aws:s3:::{bucket}"
    assert record["s3"]["bucket"]["ownerIdentity"]["principalId"]
    assert record["s3"]["object"]["size"] == 5
    assert record["s3"]["object"]["eTag"] == "827ccb0eea8a706c4c34a16891f84e7b"  # md5 of the body
    assert record["userIdentity"]["principalId"]
    assert record["requestParameters"]["sourceIPAddress"]
    assert set(record["responseElements"]) == {"x-amz-request-id", "x-amz-id-2"}
    # The sequencer orders events: a later write has a greater one (compared as same-length hex)
    later = next(r for r in records if "later" in r["s3"]["object"]["key"])
    first_seq, later_seq = record["s3"]["object"]["sequencer"], later["s3"]["object"]["sequencer"]
    assert len(first_seq) == len(later_seq)
    assert later_seq > first_seq
