"""KPL aggregation: many user records packed into one Kinesis record, and back.

The wire format is the Kinesis Producer Library's (magic ``F3 89 9A C2``, a protobuf
``AggregatedRecord``, then the MD5 of the protobuf), so any KPL-aware consumer — the KCL, Lambda
with ``aws_kinesis_agg``, or :func:`deaggregate` here — reads what this producer writes.

Alleycat aggregates per partition key (one race per aggregated record): all messages of a race stay
on the race's shard, in the order they were put.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import aws_kinesis_agg
from aws_kinesis_agg.aggregator import AggRecord
from aws_kinesis_agg.messages_pb2 import AggregatedRecord as _AggregatedRecordProto
from google.protobuf.message import DecodeError

from producers.limits import KPL_AGGREGATION_MAX_BYTES, MAX_RECORD_BYTES

MAGIC: bytes = aws_kinesis_agg.MAGIC
_DIGEST_SIZE: int = aws_kinesis_agg.DIGEST_SIZE

__all__ = [
    "MAGIC",
    "AggregatedRecord",
    "PartitionAggregator",
    "deaggregate",
    "encode_aggregated",
    "is_aggregated",
]


def _split(data: bytes) -> tuple[bytes, bytes] | None:
    """Return (protobuf body, digest) if ``data`` has the KPL frame and a matching MD5."""
    if len(data) <= len(MAGIC) + _DIGEST_SIZE or not data.startswith(MAGIC):
        return None
    body = data[len(MAGIC) : -_DIGEST_SIZE]
    digest = data[-_DIGEST_SIZE:]
    if hashlib.md5(body, usedforsecurity=False).digest() != digest:
        return None
    return body, digest


def is_aggregated(data: bytes) -> bool:
    """True if ``data`` is a KPL aggregated record (magic header and a valid MD5 trailer).

    A plain JSON message can never start with the magic bytes (0xF3 is not valid leading UTF-8 for
    ``{``), and the digest check rules out accidental matches in binary payloads.
    """
    return _split(data) is not None


def deaggregate(data: bytes) -> list[bytes]:
    """Return the user payloads inside a Kinesis record's data, in the order they were added.

    A plain (non-aggregated) record returns ``[data]``, as does anything whose frame or protobuf is
    damaged: the caller then treats it as one message and its own validation decides its fate,
    instead of losing it here.
    """
    parts = _split(data)
    if parts is None:
        return [data]
    message = _AggregatedRecordProto()
    try:
        message.ParseFromString(parts[0])
    except DecodeError:
        return [data]
    return [bytes(record.data) for record in message.records]


@dataclass(frozen=True, slots=True)
class AggregatedRecord:
    """A finished Kinesis record and the user payloads packed in it (to report them on failure)."""

    partition_key: str
    data: bytes
    user_records: tuple[bytes, ...]
    # When its first user record was added (caller's clock); its deadline counts from there.
    opened_at: float = 0.0


def encode_aggregated(partition_key: str, payloads: Sequence[bytes]) -> bytes:
    """Pack ``payloads`` (one partition key) into a single KPL aggregated record's data.

    Handy for consumer tests. Raises ``ValueError`` if they do not fit in one 1 MiB record.
    """
    record = AggRecord(MAX_RECORD_BYTES - len(partition_key.encode()))
    for payload in payloads:
        if not record.add_user_record(partition_key, payload):
            raise ValueError("payloads do not fit in one aggregated record")
    _pk, _ehk, data = record.get_contents()
    return bytes(data)


class _OpenRecord:
    """An aggregated record still accepting user records, with the payloads it holds."""

    __slots__ = ("agg", "opened_at", "payloads")

    def __init__(self, max_size: int, opened_at: float) -> None:
        self.agg = AggRecord(max_size)
        self.payloads: list[bytes] = []
        self.opened_at = opened_at

    def finish(self, partition_key: str) -> AggregatedRecord:
        _pk, _ehk, data = self.agg.get_contents()
        return AggregatedRecord(partition_key, bytes(data), tuple(self.payloads), self.opened_at)


class PartitionAggregator:
    """Keeps one open aggregated record per partition key. Not thread-safe: the producer locks.

    ``max_bytes`` bounds an aggregated record's data; the partition key's own bytes are subtracted
    too, so the finished Kinesis record always fits the 1 MiB per-record limit.
    """

    def __init__(self, max_bytes: int = KPL_AGGREGATION_MAX_BYTES) -> None:
        if not 0 < max_bytes <= MAX_RECORD_BYTES:
            raise ValueError(f"max_bytes must be in 1..{MAX_RECORD_BYTES}")
        self._max_bytes = max_bytes
        self._open: dict[str, _OpenRecord] = {}

    def _capacity(self, partition_key: str) -> int:
        return min(self._max_bytes, MAX_RECORD_BYTES - len(partition_key.encode()))

    def add(self, partition_key: str, data: bytes, now: float = 0.0) -> tuple[list[AggregatedRecord], bool]:
        """Add a user record (``now`` stamps a newly opened record's ``opened_at``).

        Returns ``(finished, accepted)``: aggregated records that are now complete (to be sent),
        and whether ``data`` was taken. A user record too large for an empty aggregated record is
        not taken; the key's open record is finished first so the caller can send ``data`` plain
        right after it without reordering the key's records.
        """
        finished: list[AggregatedRecord] = []
        current = self._open.get(partition_key)
        if current is None:
            current = self._open[partition_key] = _OpenRecord(self._capacity(partition_key), now)
        try:
            added = current.agg.add_user_record(partition_key, data)
        except ValueError:
            # Too big even for an empty aggregated record.
            if current.payloads:
                finished.append(current.finish(partition_key))
            del self._open[partition_key]
            return finished, False
        if not added:
            finished.append(current.finish(partition_key))
            current = self._open[partition_key] = _OpenRecord(self._capacity(partition_key), now)
            # An empty record accepts anything the try above did not reject as too big.
            current.agg.add_user_record(partition_key, data)
        current.payloads.append(data)
        return finished, True

    def drain(self) -> list[AggregatedRecord]:
        """Finish and return every open aggregated record."""
        finished = [rec.finish(key) for key, rec in self._open.items() if rec.payloads]
        self._open.clear()
        return finished

    def __len__(self) -> int:
        """Number of user records held in open aggregated records."""
        return sum(len(rec.payloads) for rec in self._open.values())
