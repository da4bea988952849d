"""Canonical Lambda event shapes (see aws-semantics.md), built for tests."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/races"
SHARD = "shardId-000000000000"
TABLE_STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/races/stream/2026-11-21T00:00:00.000"


def kinesis_record(
    data: bytes, seq: int, *, partition_key: str = "1", arrival: float = 1_700_000_000.0
) -> dict[str, Any]:
    """One Kinesis record as Lambda delivers it."""
    sequence = f"{49_590_000_000_000_000_000_000_000_000_000_000_000_000 + seq}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{SHARD}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/aggregator",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
    }


def kinesis_event(payloads: Iterable[bytes | dict[str, Any]], *, first_seq: int = 0) -> dict[str, Any]:
    """A Kinesis batch of the given payloads (dicts are JSON-encoded)."""
    records = []
    for offset, payload in enumerate(payloads):
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        key = str(payload.get("raceId", "1")) if isinstance(payload, dict) else "1"
        records.append(kinesis_record(data, first_seq + offset, partition_key=key))
    return {"Records": records}


def window_event(
    records: Sequence[dict[str, Any]],
    state: dict[str, Any] | None,
    *,
    final: bool = False,
    terminated_early: bool = False,
    start: str = "2026-11-21T10:00:00Z",
    end: str = "2026-11-21T10:00:05Z",
) -> dict[str, Any]:
    """A tumbling-window invocation of a Kinesis mapping."""
    return {
        "Records": list(records),
        "window": {"start": start, "end": end},
        "state": {} if state is None else state,
        "shardId": SHARD,
        "eventSourceARN": STREAM_ARN,
        "isFinalInvokeForWindow": final,
        "isWindowTerminatedEarly": terminated_early,
    }


def ddb_stream_record(
    event_name: str, keys: dict[str, Any], new: dict[str, Any] | None, old: dict[str, Any] | None, seq: int
) -> dict[str, Any]:
    """One DynamoDB Streams record (NEW_AND_OLD_IMAGES)."""
    dynamodb: dict[str, Any] = {
        "ApproximateCreationDateTime": 1_700_000_000.0,
        "Keys": keys,
        "SequenceNumber": str(100 + seq),
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new is not None:
        dynamodb["NewImage"] = new
    if old is not None:
        dynamodb["OldImage"] = old
    return {
        "eventID": f"{seq:032x}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": dynamodb,
        "eventSourceARN": TABLE_STREAM_ARN,
    }
