"""AWS/Kinesis stream-level metrics from the Kinesis calls seen on the endpoint.

Per call, as Kinesis reports them (dimension ``StreamName``): writes give IncomingRecords,
IncomingBytes, PutRecord.* / PutRecords.* and WriteProvisionedThroughputExceeded (records refused);
reads give GetRecords.Success, .Records, .Bytes, .IteratorAgeMilliseconds and
ReadProvisionedThroughputExceeded (calls refused). Bytes are data plus partition key for writes and
data for reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from localcloud.metrics.aggregate import MetricAggregator, MetricId
from localcloud.metrics.calls import JsonAnswer, JsonCall, decoded_length

NAMESPACE = "AWS/Kinesis"
THROTTLED = "ProvisionedThroughputExceededException"
OBSERVED = frozenset({"PutRecord", "PutRecords", "GetRecords"})


def stream_of(call: JsonCall) -> tuple[str, str]:
    """Stream name and region of a call addressed by StreamName or StreamARN."""
    arn = call.request.get("StreamARN")
    if isinstance(arn, str) and arn.startswith("arn:"):
        parts = arn.split(":", 5)
        return parts[5].split("/", 1)[-1], parts[3]
    return str(call.request.get("StreamName", "")), call.region


def iterator_position(call: JsonCall) -> tuple[str, str] | None:
    """(stream name, shard id) of a GetRecords call, decoded from moto's shard iterator."""
    from moto.kinesis.utils import decompose_shard_iterator  # noqa: PLC0415 - moto is heavy

    iterator = call.request.get("ShardIterator")
    if not isinstance(iterator, str):
        return None
    try:
        stream_name, shard_id, _ = decompose_shard_iterator(iterator)
    except Exception:  # not one of moto's iterators: moto will say so
        return None
    return stream_name, shard_id


def record_size(record: Any) -> int:
    """Bytes a PutRecords entry counts against its shard: data plus partition key."""
    if not isinstance(record, dict):
        return 0
    data = record.get("Data", "")
    key = record.get("PartitionKey", "")
    if not isinstance(data, str) or not isinstance(key, str):
        return 0
    # Inlined base64 length: this runs for every entry of every PutRecords call.
    size = len(data) * 3 // 4 - data[-2:].count("=")
    return size + (len(key) if key.isascii() else len(key.encode()))


class KinesisMetrics:
    """Turns one observed Kinesis call into samples."""

    def __init__(self, sink: MetricAggregator, clock: Callable[[], float] = time.time) -> None:
        self._sink = sink
        self._clock = clock
        self._ids: dict[tuple[str, str], MetricId] = {}

    def _id(self, stream: str, name: str, unit: str) -> MetricId:
        key = (stream, name)
        metric = self._ids.get(key)
        if metric is None:
            metric = self._ids[key] = MetricId(NAMESPACE, name, (("StreamName", stream),), unit)
        return metric

    def observe(self, call: JsonCall, answer: JsonAnswer) -> None:
        """Record the metrics of one call (PutRecord, PutRecords, GetRecords)."""
        if call.operation == "GetRecords":
            self._get_records(call, answer)
            return
        stream = stream_of(call)[0]
        if not stream:
            return
        if call.operation == "PutRecords":
            self._put_records(stream, call, answer)
        elif call.operation == "PutRecord":
            self._put_record(stream, call, answer)

    def _put_records(self, stream: str, call: JsonCall, answer: JsonAnswer) -> None:
        records = call.request.get("Records")
        if not isinstance(records, list):
            return
        s = self._id
        if answer.status_code != 200:
            refused = len(records) if answer.error_code() == THROTTLED else 0
            self._sink.add_all(
                [
                    (s(stream, "PutRecords.Success", "Count"), 0.0),
                    (s(stream, "WriteProvisionedThroughputExceeded", "Count"), float(refused)),
                ]
            )
            return
        ok = throttled = failed = size = 0
        for request, result in zip(records, answer.json().get("Records", []), strict=False):
            if "SequenceNumber" in result:
                ok += 1
                size += record_size(request)
            elif result.get("ErrorCode") == THROTTLED:
                throttled += 1
            else:
                failed += 1
        self._sink.add_all(
            [
                (s(stream, "PutRecords.TotalRecords", "Count"), float(len(records))),
                (s(stream, "PutRecords.SuccessfulRecords", "Count"), float(ok)),
                (s(stream, "PutRecords.ThrottledRecords", "Count"), float(throttled)),
                (s(stream, "PutRecords.FailedRecords", "Count"), float(failed)),
                (s(stream, "PutRecords.Success", "Count"), 1.0 if ok else 0.0),
                (s(stream, "PutRecords.Bytes", "Bytes"), float(size)),
                (s(stream, "IncomingRecords", "Count"), float(ok)),
                (s(stream, "IncomingBytes", "Bytes"), float(size)),
                (s(stream, "WriteProvisionedThroughputExceeded", "Count"), float(throttled)),
            ]
        )

    def _put_record(self, stream: str, call: JsonCall, answer: JsonAnswer) -> None:
        s = self._id
        if answer.status_code != 200:
            refused = 1.0 if answer.error_code() == THROTTLED else 0.0
            self._sink.add_all(
                [
                    (s(stream, "PutRecord.Success", "Count"), 0.0),
                    (s(stream, "WriteProvisionedThroughputExceeded", "Count"), refused),
                ]
            )
            return
        size = float(record_size(call.request))
        self._sink.add_all(
            [
                (s(stream, "PutRecord.Success", "Count"), 1.0),
                (s(stream, "PutRecord.Bytes", "Bytes"), size),
                (s(stream, "IncomingRecords", "Count"), 1.0),
                (s(stream, "IncomingBytes", "Bytes"), size),
                (s(stream, "WriteProvisionedThroughputExceeded", "Count"), 0.0),
            ]
        )

    def _get_records(self, call: JsonCall, answer: JsonAnswer) -> None:
        position = iterator_position(call)
        if position is None:
            return
        stream = position[0]
        s = self._id
        if answer.status_code != 200:
            if answer.error_code() == THROTTLED:
                self._sink.add_all(
                    [
                        (s(stream, "GetRecords.Success", "Count"), 0.0),
                        (s(stream, "ReadProvisionedThroughputExceeded", "Count"), 1.0),
                    ]
                )
            return
        body = answer.json()
        records = body.get("Records", [])
        size = sum(decoded_length(str(r.get("Data", ""))) for r in records)
        if records:
            arrival = float(records[-1].get("ApproximateArrivalTimestamp", 0) or 0)
            age = max(0.0, (self._clock() - arrival) * 1000) if arrival else 0.0
        else:
            age = float(body.get("MillisBehindLatest", 0) or 0)
        self._sink.add_all(
            [
                (s(stream, "GetRecords.Success", "Count"), 1.0),
                (s(stream, "GetRecords.Records", "Count"), float(len(records))),
                (s(stream, "GetRecords.Bytes", "Bytes"), float(size)),
                (s(stream, "GetRecords.IteratorAgeMilliseconds", "Milliseconds"), age),
                (s(stream, "ReadProvisionedThroughputExceeded", "Count"), 0.0),
            ]
        )
