"""KPL aggregation: many user records packed into one Kinesis record, and back.

The wire format is the Kinesis Producer Library's (magic ``F3 89 9A C2``, a protobuf
``AggregatedRecord``, then the MD5 of the protobuf), so any KPL-aware consumer — the KCL, Lambda
with ``aws_kinesis_agg``, or :func:`deaggregate` here — reads what this producer writes.

Alleycat aggregates per partition key (one race per aggregated record): all messages of a race stay
on the race's shard, in the order they were put.

Compressed batches (``PartitionAggregator(compress=True)``): plain KPL aggregation packs one user
record per message, so a shard's 1 MiB/s carries only ~6,500 racers of ~150-byte JSON. Compressed,
each aggregated record holds a single user record that is an *Alleycat compressed batch*:

=======  =======  ==========================================================================
offset   bytes    content
=======  =======  ==========================================================================
0        4        magic ``00 41 43 42`` (``b"\x00ACB"``; 0x00 can never start a JSON text)
4        1        format version, ``01``
5        rest     a zlib stream (RFC 1950, with its Adler-32 check) of the messages as UTF-8
                  JSON, one per line: joined by ``\n``, no trailing newline
=======  =======  ==========================================================================

Simulator messages compress about 10:1, so a shard carries tens of thousands of racers.
:func:`read_messages` expands compressed batches transparently (in a KPL aggregate or on their
own), so every consumer reading records through it sees the same list of JSON messages as before. A
message holding a newline cannot be a line: the producer sends it plain instead. Devices and other
producers keep sending plain JSON records, which are read exactly as before.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import aws_kinesis_agg
from aws_kinesis_agg.aggregator import AggRecord
from aws_kinesis_agg.messages_pb2 import AggregatedRecord as _AggregatedRecordProto
from google.protobuf.message import DecodeError

from producers.limits import KPL_AGGREGATION_MAX_BYTES, MAX_RECORD_BYTES

MAGIC: bytes = aws_kinesis_agg.MAGIC
_DIGEST_SIZE: int = aws_kinesis_agg.DIGEST_SIZE

BATCH_MAGIC: bytes = b"\x00ACB"
BATCH_VERSION = 1
_BATCH_HEADER = BATCH_MAGIC + bytes([BATCH_VERSION])
# zlib's default level: ~10:1 on racer messages at ~0.4 ms per 50 KB; level 9 gains 10% for 4x time.
BATCH_COMPRESSION_LEVEL = 6
# A batch never legitimately inflates past this (its record is at most 1 MiB compressed from at most
# 1 MiB of lines); the bound keeps a hostile record from inflating without limit in the consumer.
MAX_BATCH_BYTES = 4 * 1024 * 1024
# Room left in a compressed record for zlib's worst case on incompressible input (5 bytes per 16 KiB
# block plus header and check), the batch header and the KPL frame around it.
_COMPRESSION_SLACK = 1024

__all__ = [
    "BATCH_MAGIC",
    "BATCH_VERSION",
    "MAGIC",
    "AggregatedRecord",
    "CorruptBatchError",
    "PartitionAggregator",
    "batch_lines",
    "deaggregate",
    "decode_batch",
    "encode_aggregated",
    "encode_batch",
    "is_aggregated",
    "is_batch",
    "read_messages",
]


class CorruptBatchError(ValueError):
    """Data that starts like a compressed batch but cannot be read as one."""


def encode_batch(payloads: Sequence[bytes]) -> bytes:
    """Pack JSON messages into one compressed batch (see the module docstring for the format).

    Raises ``ValueError`` for no payloads or a payload holding a newline (it would split in two).
    """
    if not payloads:
        raise ValueError("a compressed batch holds at least one message")
    if any(b"\n" in payload for payload in payloads):
        raise ValueError("a message in a compressed batch cannot contain a newline")
    return _BATCH_HEADER + zlib.compress(b"\n".join(payloads), BATCH_COMPRESSION_LEVEL)


def is_batch(data: bytes) -> bool:
    """True if ``data`` starts with the compressed batch magic (whether or not it is intact)."""
    return data.startswith(BATCH_MAGIC)


def batch_lines(data: bytes) -> bytes:
    """The newline-separated messages of a compressed batch, decompressed and checked.

    Raises :class:`CorruptBatchError` for an unknown version, a damaged or truncated stream,
    trailing bytes, or more than ``MAX_BATCH_BYTES`` once inflated.
    """
    if not data.startswith(BATCH_MAGIC):
        raise CorruptBatchError("not a compressed batch")
    if len(data) <= len(_BATCH_HEADER) or data[len(BATCH_MAGIC)] != BATCH_VERSION:
        version = data[len(BATCH_MAGIC)] if len(data) > len(BATCH_MAGIC) else None
        raise CorruptBatchError(f"unsupported compressed batch version {version}")
    inflater = zlib.decompressobj()
    try:
        lines = inflater.decompress(data[len(_BATCH_HEADER) :], MAX_BATCH_BYTES)
    except zlib.error as exc:
        raise CorruptBatchError(f"damaged compressed batch: {exc}") from exc
    if inflater.unconsumed_tail:
        raise CorruptBatchError(f"compressed batch inflates past {MAX_BATCH_BYTES} bytes")
    if not inflater.eof:
        raise CorruptBatchError("truncated compressed batch")
    if inflater.unused_data:
        raise CorruptBatchError("bytes after the end of a compressed batch")
    return lines


def decode_batch(data: bytes) -> list[bytes]:
    """The messages of a compressed batch, in order (raises :class:`CorruptBatchError`)."""
    return batch_lines(data).split(b"\n")


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
    instead of losing it here. Compressed batches are left as they are: see :func:`read_messages`.
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


def read_messages(data: bytes) -> list[bytes]:
    """Every Alleycat message in a Kinesis record's data, in order: what consumers should call.

    Plain records, KPL aggregates (as :func:`deaggregate`) and compressed batches, in an aggregate
    or on their own, all come out as the list of JSON messages they carry. A compressed batch that
    cannot be read raises :class:`CorruptBatchError` (a ``ValueError``): the caller parks the record.
    """
    payloads: list[bytes] = []
    for payload in deaggregate(data):
        if payload.startswith(BATCH_MAGIC):
            payloads += decode_batch(payload)
        else:
            payloads.append(payload)
    return payloads


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

    def add(self, partition_key: str, data: bytes) -> bool:
        """Take ``data`` if it fits; raises ``ValueError`` if it cannot fit even an empty record."""
        if not self.agg.add_user_record(partition_key, data):
            return False
        self.payloads.append(data)
        return True

    def finish(self, partition_key: str) -> AggregatedRecord:
        _pk, _ehk, data = self.agg.get_contents()
        return AggregatedRecord(partition_key, bytes(data), tuple(self.payloads), self.opened_at)


class _OpenBatch:
    """A compressed batch still accepting messages: kept as lines, compressed when finished."""

    __slots__ = ("capacity", "opened_at", "payloads", "size")

    def __init__(self, max_size: int, opened_at: float) -> None:
        self.capacity = max_size - _COMPRESSION_SLACK
        self.payloads: list[bytes] = []
        self.size = 0
        self.opened_at = opened_at

    def add(self, partition_key: str, data: bytes) -> bool:
        """Take ``data`` if its line fits; ``ValueError`` if it can never be a line of a batch."""
        if b"\n" in data or len(data) > self.capacity:
            raise ValueError("cannot be a line of a compressed batch")
        # Bounding the uncompressed lines bounds the compressed record, whatever the data.
        grown = self.size + len(data) + (1 if self.payloads else 0)
        if grown > self.capacity:
            return False
        self.payloads.append(data)
        self.size = grown
        return True

    def finish(self, partition_key: str) -> AggregatedRecord:
        record = AggRecord(MAX_RECORD_BYTES)
        record.add_user_record(partition_key, encode_batch(self.payloads))
        _pk, _ehk, data = record.get_contents()
        return AggregatedRecord(partition_key, bytes(data), tuple(self.payloads), self.opened_at)


class PartitionAggregator:
    """Keeps one open aggregated record per partition key. Not thread-safe: the producer locks.

    ``max_bytes`` bounds an aggregated record's data; the partition key's own bytes are subtracted
    too, so the finished Kinesis record always fits the 1 MiB per-record limit. With ``compress``
    each record holds one compressed batch of up to ``max_bytes`` (less a little slack) of
    uncompressed messages; a message holding a newline is not taken (the caller sends it plain).
    """

    def __init__(self, max_bytes: int = KPL_AGGREGATION_MAX_BYTES, *, compress: bool = False) -> None:
        low = 2 * _COMPRESSION_SLACK if compress else 1
        if not low <= max_bytes <= MAX_RECORD_BYTES:
            raise ValueError(f"max_bytes must be in {low}..{MAX_RECORD_BYTES}")
        self._max_bytes = max_bytes
        self._record_type: type[_OpenRecord] | type[_OpenBatch] = _OpenBatch if compress else _OpenRecord
        self._open: dict[str, _OpenRecord | _OpenBatch] = {}

    @property
    def compress(self) -> bool:
        """Whether records hold compressed batches."""
        return self._record_type is _OpenBatch

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
            current = self._open[partition_key] = self._record_type(self._capacity(partition_key), now)
        try:
            added = current.add(partition_key, data)
        except ValueError:
            # Too big even for an empty aggregated record (or, compressed, not a possible line).
            if current.payloads:
                finished.append(current.finish(partition_key))
            del self._open[partition_key]
            return finished, False
        if not added:
            finished.append(current.finish(partition_key))
            current = self._open[partition_key] = self._record_type(self._capacity(partition_key), now)
            # An empty record accepts anything the try above did not reject.
            current.add(partition_key, data)
        return finished, True

    def drain(self) -> list[AggregatedRecord]:
        """Finish and return every open aggregated record."""
        finished = [rec.finish(key) for key, rec in self._open.items() if rec.payloads]
        self._open.clear()
        return finished

    def __len__(self) -> int:
        """Number of user records held in open aggregated records."""
        return sum(len(rec.payloads) for rec in self._open.values())
