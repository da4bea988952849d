"""Quarantine: where records that can never succeed go, with their payload and the reason.

Lambda's on-failure destination only receives sequence-number ranges, and a record reported as a
batch item failure drags every record after it through each retry. A record that can never be
processed (bad JSON, wrong types) is therefore sent here by the handler itself and not retried; the
queue is the same one the event source mapping uses as its on-failure destination, so operators
watch one place.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

# SQS messages are limited to 256 KiB; keep room for the envelope.
MAX_PAYLOAD_BYTES = 200 * 1024


@dataclass(frozen=True)
class PoisonRecord:
    """A record that failed validation, and where it came from."""

    payload: bytes
    reason: str
    source: str  # e.g. "kinesis"
    event_source_arn: str
    partition_key: str
    sequence_number: str
    sub_sequence: int | None = None


def quarantine_body(record: PoisonRecord, now: datetime | None = None) -> str:
    """The JSON body sent to the failure queue for one poison record."""
    payload = record.payload
    truncated = len(payload) > MAX_PAYLOAD_BYTES
    kept = payload[:MAX_PAYLOAD_BYTES]
    try:
        text, encoding = kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(kept).decode("ascii"), "base64"
    body: dict[str, Any] = {
        "quarantinedAt": (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "reason": record.reason,
        "source": record.source,
        "eventSourceARN": record.event_source_arn,
        "partitionKey": record.partition_key,
        "sequenceNumber": record.sequence_number,
        "subSequenceNumber": record.sub_sequence,
        "payload": text,
        "payloadEncoding": encoding,
        "payloadBytes": len(payload),
        "payloadSha256": hashlib.sha256(payload).hexdigest(),
        "truncated": truncated,
    }
    return orjson.dumps(body).decode()


class SqsQuarantine:
    """Sends poison records to an SQS queue."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        """Send to ``queue_url`` with ``sqs_client`` (boto3)."""
        self._sqs = sqs_client
        self._queue_url = queue_url

    def send(self, record: PoisonRecord) -> None:
        """Quarantine one record; raises when SQS refuses, so the caller reports a failure instead."""
        self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=quarantine_body(record))
