"""Packing a producer's messages per partition key into KPL aggregated records.

What the records look like on the stream (KPL aggregates, compressed batches) is
:mod:`streamformat`'s business; this module decides what goes into which record: one open record
per partition key (one race per aggregated record, so all messages of a race stay on the race's
shard, in the order they were put), finished when the next message would not fit.

With ``PartitionAggregator(compress=True)`` each aggregated record holds a single user record that
is an Alleycat compressed batch. A message holding a newline cannot be a line of a batch: the
producer sends it plain instead. Devices and other producers keep sending plain JSON records.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_kinesis_agg.aggregator import AggRecord

from producers.limits import KPL_AGGREGATION_MAX_BYTES, MAX_RECORD_BYTES
from streamformat import encode_batch

# Room left in a compressed record for zlib's worst case on incompressible input (5 bytes per 16 KiB
# block plus header and check), the batch header and the KPL frame around it.
_COMPRESSION_SLACK = 1024

__all__ = ["AggregatedRecord", "PartitionAggregator"]


@dataclass(frozen=True, slots=True)
class AggregatedRecord:
    """A finished Kinesis record and the user payloads packed in it (to report them on failure)."""

    partition_key: str
    data: bytes
    user_records: tuple[bytes, ...]
    # When its first user record was added (caller's clock); its deadline counts from there.
    opened_at: float = 0.0


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
