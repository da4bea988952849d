"""Typed exceptions raised by the producer to its caller."""

from __future__ import annotations


class ProducerError(Exception):
    """Base class for errors raised by :mod:`producers`."""


class RecordTooLargeError(ProducerError, ValueError):
    """A record exceeds the 1 MiB Kinesis limit (data plus partition key); it was not buffered."""

    def __init__(self, partition_key: str, size: int, limit: int) -> None:
        super().__init__(
            f"record for partition key {partition_key!r} is {size} bytes (data + partition key); "
            f"Kinesis accepts at most {limit} bytes per record"
        )
        self.partition_key = partition_key
        self.size = size
        self.limit = limit


class InvalidPartitionKeyError(ProducerError, ValueError):
    """A partition key is empty or longer than 256 characters."""


class ProducerClosedError(ProducerError, RuntimeError):
    """``put`` was called after ``close``."""
