"""KPL aggregated records: many user records packed into one Kinesis record, and back.

The Kinesis Producer Library's format (magic, protobuf ``AggregatedRecord``, MD5 of the protobuf),
read and written with AWS's ``aws_kinesis_agg``, so any KPL-aware consumer agrees with it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Final

import aws_kinesis_agg
from aws_kinesis_agg.aggregator import AggRecord
from aws_kinesis_agg.messages_pb2 import AggregatedRecord as _AggregatedRecordProto
from google.protobuf.message import DecodeError

MAGIC: bytes = aws_kinesis_agg.MAGIC
_DIGEST_SIZE: int = aws_kinesis_agg.DIGEST_SIZE

MAX_RECORD_BYTES: Final = 1024 * 1024
"""Bytes per Kinesis record: data plus partition key (UTF-8)."""


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


def iter_user_records(data: bytes) -> Iterator[bytes]:
    """The user payloads inside a Kinesis record's data, one at a time, in the order they were added.

    Lazily, so a reader with a bound (:func:`streamformat.read_messages`) stops at the first
    payload over it instead of copying hundreds of thousands of tiny ones first. Otherwise as
    :func:`deaggregate`.
    """
    parts = _split(data)
    if parts is None:
        yield data
        return
    message = _AggregatedRecordProto()
    try:
        message.ParseFromString(parts[0])
    except DecodeError:
        yield data
        return
    for record in message.records:
        yield bytes(record.data)


def deaggregate(data: bytes) -> list[bytes]:
    """Return the user payloads inside a Kinesis record's data, in the order they were added.

    A plain (non-aggregated) record returns ``[data]``, as does anything whose frame or protobuf is
    damaged: the caller then treats it as one message and its own validation decides its fate,
    instead of losing it here. Compressed batches are left as they are, and an aggregate inside an
    aggregate is one user record like any other (never unpacked): see
    :func:`streamformat.read_messages`, which also bounds what a record may expand to.
    """
    return list(iter_user_records(data))


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
