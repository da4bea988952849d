"""Stream records in the exact shape Lambda hands them to a function, plus what the engine needs."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Bytes a record adds to the invoke payload beyond its JSON (separator, slack for escaping).
_RECORD_OVERHEAD = 2


@dataclass(frozen=True)
class StreamRecord:
    """One record read from a shard.

    ``event`` is the Lambda event record; ``arrival`` is the insertion time in epoch seconds
    (Kinesis approximateArrivalTimestamp, DynamoDB ApproximateCreationDateTime); ``key`` routes the
    record to a sub-stream when ParallelizationFactor > 1.
    """

    shard_id: str
    sequence_number: str
    arrival: float
    key: str
    event: dict[str, Any]
    size: int

    @property
    def seq(self) -> int:
        """The sequence number as an integer (Kinesis and DynamoDB numbers are decimal strings)."""
        return int(self.sequence_number)


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return float(value.timestamp())
    return float(value)


def kinesis_record(
    raw: dict[str, Any], shard_id: str, stream_arn: str, region: str, role_arn: str
) -> StreamRecord:
    """Build the Lambda record for one Kinesis GetRecords entry (boto3 shape)."""
    data = raw["Data"]
    data_bytes = data if isinstance(data, bytes | bytearray) else str(data).encode()
    arrival = round(_epoch(raw["ApproximateArrivalTimestamp"]), 3)
    sequence_number = str(raw["SequenceNumber"])
    event = {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": raw["PartitionKey"],
            "sequenceNumber": sequence_number,
            "data": base64.b64encode(bytes(data_bytes)).decode("ascii"),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence_number}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }
    return StreamRecord(
        shard_id=shard_id,
        sequence_number=sequence_number,
        arrival=arrival,
        key=str(raw["PartitionKey"]),
        event=event,
        size=_json_size(event),
    )


def dynamodb_record(raw: dict[str, Any], shard_id: str, stream_arn: str, region: str) -> StreamRecord:
    """Build the Lambda record for one DynamoDB Streams GetRecords entry (boto3 shape).

    moto reports eventVersion "1.0" and a fixed region; Lambda delivers "1.1" and the stream's
    region, and lower-camel ``userIdentity`` for TTL deletions.
    """
    change = dict(raw.get("dynamodb") or {})
    arrival = _epoch(change.get("ApproximateCreationDateTime", 0.0))
    change["ApproximateCreationDateTime"] = arrival
    ordered: dict[str, Any] = {"ApproximateCreationDateTime": arrival}
    for key in ("Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in change:
            value = change[key]
            ordered[key] = _wire_item(value) if key in ("Keys", "NewImage", "OldImage") else value
    sequence_number = str(change.get("SequenceNumber", ""))
    ordered["SequenceNumber"] = sequence_number
    # moto's SizeBytes is the size of its own JSON; Lambda's is DynamoDB's item-size arithmetic
    # over the keys and the images the record carries (recorded on AWS, see the fidelity suite).
    ordered["SizeBytes"] = sum(item_size(change.get(part) or {}) for part in ("Keys", "NewImage", "OldImage"))
    event: dict[str, Any] = {
        "eventID": str(raw.get("eventID", "")),
        "eventName": raw.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ordered,
        "eventSourceARN": stream_arn,
    }
    identity = raw.get("userIdentity")
    if identity:
        event["userIdentity"] = {
            "type": identity.get("Type", identity.get("type")),
            "principalId": identity.get("PrincipalId", identity.get("principalId")),
        }
    return StreamRecord(
        shard_id=shard_id,
        sequence_number=sequence_number,
        arrival=arrival,
        key=json.dumps(change.get("Keys", {}), sort_keys=True),
        event=event,
        size=_json_size(event),
    )


def item_size(item: dict[str, Any]) -> int:
    """DynamoDB's size of an item (or key) in bytes: each attribute's name plus its value."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(attribute: dict[str, Any]) -> int:
    # DynamoDB's documented sizes: strings and binaries by length, numbers 1 byte per two
    # significant digits plus 1, booleans and nulls 1, lists and maps 3 plus 1 per element.
    (kind, value), *_ = attribute.items()
    if kind == "S":
        return len(str(value).encode())
    if kind == "B":
        return len(value) if isinstance(value, bytes | bytearray) else len(base64.b64decode(value))
    if kind == "N":
        return _number_size(str(value))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(v).encode()) for v in value)
    if kind == "NS":
        return sum(_number_size(str(v)) for v in value)
    if kind == "BS":
        return sum(_value_size({"B": v}) for v in value)
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in value)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in value.items())
    return len(json.dumps(value))


def _number_size(text: str) -> int:
    digits = text.lstrip("+-").split("e")[0].split("E")[0].replace(".", "").strip("0")
    return (len(digits) + 1) // 2 + 1


def _wire_value(attribute: dict[str, Any]) -> dict[str, Any]:
    """One attribute value as Lambda's JSON carries it: binary (``B``/``BS``) base64-encoded.

    boto3 hands binary attributes over as bytes; Lambda events are JSON, where they are base64 text.
    """
    (kind, value), *_ = attribute.items()
    if kind == "B" and isinstance(value, bytes | bytearray):
        return {"B": base64.b64encode(value).decode("ascii")}
    if kind == "BS":
        return {
            "BS": [
                base64.b64encode(v).decode("ascii") if isinstance(v, bytes | bytearray) else v for v in value
            ]
        }
    if kind == "M":
        return {"M": _wire_item(value)}
    if kind == "L":
        return {"L": [_wire_value(v) for v in value]}
    return attribute


def _wire_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _wire_value(value) for name, value in item.items()}


def _json_size(event: dict[str, Any]) -> int:
    return len(json.dumps(event, separators=(",", ":"))) + _RECORD_OVERHEAD


def iso_millis(epoch: float) -> str:
    """UTC ISO-8601 with milliseconds and 'Z', as in destination records."""
    stamp = datetime.fromtimestamp(epoch, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def iso_seconds(epoch: float) -> str:
    """UTC ISO-8601 without fractional seconds, as in tumbling window bounds."""
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
