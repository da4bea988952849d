"""Cutting a stream of records into PutRecords requests that respect the per-request limits."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from producers.limits import MAX_RECORDS_PER_REQUEST, MAX_REQUEST_BYTES

T = TypeVar("T")


class BatchBuilder(Generic[T]):
    """Accumulates items into batches of at most ``max_records`` items and ``max_bytes`` bytes.

    Not thread-safe; the producer calls it under its lock. Each item's size must already be within
    ``max_bytes`` (the producer rejects oversized records before they get here).
    """

    def __init__(
        self, max_records: int = MAX_RECORDS_PER_REQUEST, max_bytes: int = MAX_REQUEST_BYTES
    ) -> None:
        if not 1 <= max_records <= MAX_RECORDS_PER_REQUEST:
            raise ValueError(f"max_records must be in 1..{MAX_RECORDS_PER_REQUEST}")
        if not 1 <= max_bytes <= MAX_REQUEST_BYTES:
            raise ValueError(f"max_bytes must be in 1..{MAX_REQUEST_BYTES}")
        self.max_records = max_records
        self.max_bytes = max_bytes
        self._items: list[T] = []
        self._bytes = 0

    def add(self, item: T, size: int) -> list[list[T]]:
        """Add an item; return the batches that are complete now (zero, one or two).

        A batch is complete when the next item would break a limit, or as soon as it holds
        ``max_records`` items (no point waiting for an item that cannot join it).
        """
        if size > self.max_bytes:
            raise ValueError(f"item of {size} bytes exceeds the batch limit of {self.max_bytes} bytes")
        ready: list[list[T]] = []
        if self._items and self._bytes + size > self.max_bytes:
            ready.append(self.drain())
        self._items.append(item)
        self._bytes += size
        if len(self._items) >= self.max_records:
            ready.append(self.drain())
        return ready

    def drain(self) -> list[T]:
        """Return the current (possibly partial or empty) batch and start a new one."""
        items, self._items, self._bytes = self._items, [], 0
        return items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size_bytes(self) -> int:
        """Bytes in the current batch."""
        return self._bytes


def split_batches(
    items: Iterable[T],
    size_of: Callable[[T], int],
    *,
    max_records: int = MAX_RECORDS_PER_REQUEST,
    max_bytes: int = MAX_REQUEST_BYTES,
) -> Iterator[list[T]]:
    """Split ``items`` into consecutive batches within the limits, keeping their order."""
    builder: BatchBuilder[T] = BatchBuilder(max_records, max_bytes)
    for item in items:
        yield from builder.add(item, size_of(item))
    last = builder.drain()
    if last:
        yield last
