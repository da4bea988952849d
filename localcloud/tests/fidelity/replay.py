"""Helpers shared by the fidelity scenarios: functions with a chosen role, waits, SQS/S3 reads."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from typing import Any

from esm_support import Aws, RecordingInvoker, wait_for

# Scenarios wait at most this long for an outcome; a healthy run needs a few seconds.
TIMEOUT = 30.0


def role(aws: Aws, name: str | None = None) -> str:
    """Create an IAM role; returns its ARN."""
    name = name or f"role-{uuid.uuid4().hex[:8]}"
    return str(aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument="{}")["Role"]["Arn"])


def function(aws: Aws, role_arn: str, name: str | None = None) -> str:
    """Create a (stand-in) Python function running as ``role_arn``; returns its name."""
    name = name or f"fn-{uuid.uuid4().hex[:8]}"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("handler.py", "def handler(event, context):\n    return None\n")
    aws.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role_arn,
        Handler="handler.handler",
        Code={"ZipFile": buf.getvalue()},
    )
    return name


def stream(aws: Aws, name: str | None = None) -> tuple[str, str]:
    """A one-shard Kinesis stream: (name, ARN)."""
    name = name or f"stream-{uuid.uuid4().hex[:8]}"
    kinesis = aws.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    return name, str(kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"])


def queue(aws: Aws) -> tuple[str, str, str]:
    """An SQS queue: (name, URL, ARN)."""
    name = f"queue-{uuid.uuid4().hex[:8]}"
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return name, str(url), str(arn)


def wait_calls(invoker: RecordingInvoker, name: str, count: int, timeout: float = TIMEOUT) -> list[Any]:
    """Wait until ``name`` was invoked ``count`` times; returns the calls."""
    assert wait_for(lambda: len(invoker.calls_for(name)) >= count, timeout=timeout), (
        f"{name}: {len(invoker.calls_for(name))} of {count} invocations"
    )
    return invoker.calls_for(name)


def receive_one(aws: Aws, url: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """The first message arriving on ``url`` (its body parsed)."""
    sqs = aws.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=0).get("Messages")
        if messages:
            return dict(json.loads(messages[0]["Body"]))
        time.sleep(0.05)
    raise AssertionError(f"no message on {url} within {timeout}s")


def one_object(aws: Aws, bucket: str, timeout: float = TIMEOUT) -> tuple[str, dict[str, Any]]:
    """The first object written to ``bucket``: (key, parsed body)."""
    s3 = aws.client("s3")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        contents = s3.list_objects_v2(Bucket=bucket).get("Contents")
        if contents:
            key = contents[0]["Key"]
            return str(key), dict(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        time.sleep(0.05)
    raise AssertionError(f"nothing written to {bucket} within {timeout}s")


def _divide_by_zero(event: dict[str, Any]) -> Any:
    return 1 / 0


# What the recorded batch-item-failure scenarios' functions answer (Kinesis and DynamoDB Streams alike),
# by scenario name: malformed reports, and an unhandled exception.
FAILURE_RESPONSES: dict[str, Any] = {
    "item_identifier_not_present_failure": {"batchItemFailures": [{"itemIdentifier": 123}]},
    "empty_string_item_identifier_failure": {"batchItemFailures": [{"itemIdentifier": ""}]},
    "null_item_identifier_failure": {"batchItemFailures": [{"itemIdentifier": None}]},
    "invalid_key_foo_failure": {"batchItemFailures": [{"foo": 123}]},
    "invalid_key_foo_null_value_failure": {"batchItemFailures": [{"foo": None}]},
    "unhandled_exception_in_function": _divide_by_zero,
}
