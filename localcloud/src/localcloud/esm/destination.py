"""On-failure destinations: the metadata record Lambda sends when it gives up on records."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from localcloud.invocation import InvocationResult

from .config import MappingConfig, SourceKind, arn_region
from .records import StreamRecord, iso_millis, iso_seconds
from .sources import make_client

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


def failure_record(
    config: MappingConfig,
    shard_id: str,
    records: Sequence[StreamRecord],
    *,
    condition: str,
    invoke_count: int,
    result: InvocationResult | None,
    now: float,
    window_bounds: tuple[str, str, float, float, int] | None = None,
) -> dict[str, Any]:
    """The JSON document AWS sends to an SQS/SNS on-failure destination.

    ``records`` are the records still failing (after partial failures only those). With
    RecordAgeExceeded (``result`` None) there is no responseContext. ``window_bounds`` (start seq,
    end seq, first arrival, last arrival, count) describes a tumbling window whose final invocation
    never succeeded.
    """
    if window_bounds is not None:
        start_seq, end_seq, first_arrival, last_arrival, count = window_bounds
    else:
        start_seq, end_seq = records[0].sequence_number, records[-1].sequence_number
        first_arrival, last_arrival, count = records[0].arrival, records[-1].arrival, len(records)
    # Recorded on AWS: Kinesis arrival times carry milliseconds, DynamoDB Streams ones whole seconds
    # (its ApproximateCreationDateTime has second precision).
    arrival = iso_millis if config.kind is SourceKind.KINESIS else iso_seconds
    batch_info = {
        "shardId": shard_id,
        "startSequenceNumber": start_seq,
        "endSequenceNumber": end_seq,
        "approximateArrivalOfFirstRecord": arrival(first_arrival),
        "approximateArrivalOfLastRecord": arrival(last_arrival),
        "batchSize": count,
        "streamArn": config.event_source_arn,
    }
    document: dict[str, Any] = {
        "requestContext": {
            "requestId": result.request_id if result is not None else str(uuid.uuid4()),
            "functionArn": config.function_arn,
            "condition": condition,
            # Recorded on AWS (LocalStack's Kinesis snapshots, validated 2025-04-13): a
            # RecordAgeExceeded record always says 1, whether the records were retried for the
            # whole age limit or expired before any invocation.
            "approximateInvokeCount": 1 if condition == RECORD_AGE_EXCEEDED else invoke_count,
        }
    }
    if result is not None:
        # Lambda always writes functionError: null when the function returned normally (a
        # partial batch failure), as recorded on AWS.
        document["responseContext"] = {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": result.function_error or None,
        }
    document["version"] = "1.0"
    document["timestamp"] = iso_millis(now)
    key = "KinesisBatchInfo" if config.kind is SourceKind.KINESIS else "DDBStreamBatchInfo"
    document[key] = batch_info
    return document


class FailureDestination:
    """Sends failure records to the mapping's OnFailure destination (SQS, SNS or S3)."""

    def __init__(self, arn: str, endpoint_url: str, mapping_uuid: str) -> None:
        self.arn = arn
        self.endpoint_url = endpoint_url
        self.mapping_uuid = mapping_uuid
        self.service = arn.split(":")[2]
        self.region = arn_region(arn) or "us-east-1"
        self._queue_url: str | None = None

    def _client(self) -> Any:
        return make_client(self.service, self.endpoint_url, self.region)

    def send(self, document: dict[str, Any], payload: dict[str, Any] | None, shard_id: str) -> None:
        """Deliver ``document``; S3 destinations also get the invocation ``payload``."""
        body = json.dumps(document)
        if self.service == "sqs":
            if self._queue_url is None:
                parts = self.arn.split(":")
                self._queue_url = self._client().get_queue_url(
                    QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
                )["QueueUrl"]
            self._client().send_message(QueueUrl=self._queue_url, MessageBody=body)
        elif self.service == "sns":
            self._client().publish(TopicArn=self.arn, Message=body)
        elif self.service == "s3":
            bucket = self.arn.split(":")[5].split("/")[0]
            stamp = datetime.now(tz=UTC)
            key = (
                f"aws/lambda/{self.mapping_uuid}/{shard_id}/{stamp:%Y/%m/%d}/"
                f"{stamp:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
            )
            full = dict(document)
            if payload is not None:
                full["payload"] = payload
            self._client().put_object(Bucket=bucket, Key=key, Body=json.dumps(full).encode())
        else:
            raise ValueError(f"unsupported on-failure destination {self.arn}")
