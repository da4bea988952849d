"""How far one Kinesis record may expand when it is read: the decompression-bomb bounds.

A Kinesis record is at most 1 MiB, but a compressed batch inside it can inflate ~1,000:1 and a KPL
aggregate can hold hundreds of thousands of tiny user records. A hostile 1 MiB record of 255
compressed batches once expanded to 534,773,760 messages (4.1 GB) and killed the consumer, which
then retried it until the record aged out of the stream. So every record is read against one
budget, spent incrementally while decoding (inflated bytes as zlib produces them, messages as
they are found), and reading stops with :class:`RecordTooLargeError` at the first byte or message
over it — whatever the nesting (a plain KPL aggregate, a compressed batch, an aggregate of batches).

The defaults sit above anything an honest producer writes:

- Alleycat's producer puts at most 1 MiB of message lines in one record (its aggregation bound is
  at most the 1 MiB record limit), i.e. ~7,000 simulator messages of ~155 bytes; a plain KPL
  aggregate carries at most 1 MiB of payloads by construction.
- Even a producer filling a whole 1 MiB record with one compressed batch of simulator messages
  (~11.5:1, ~13.5 compressed bytes a message) packs ~77,500 messages, ~12 MiB inflated.

:data:`MAX_RECORD_INFLATED_BYTES` (16 MiB) and :data:`MAX_RECORD_MESSAGES` (131,072) clear that
densest honest record by 1.3x and 1.7x and Alleycat's own records by 16x and 18x, while keeping
the worst record a consumer has to hold to tens of MiB instead of gigabytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

MAX_RECORD_INFLATED_BYTES: Final = 16 * 1024 * 1024
"""Bytes of messages one Kinesis record may expand to (batch lines inflated, KPL payloads)."""

MAX_RECORD_MESSAGES: Final = 131_072
"""Messages one Kinesis record may hold, counting every line of every compressed batch in it."""


class RecordTooLargeError(ValueError):
    """A record that expands past its bounds: it can never be read, so it is parked, not retried."""


@dataclass(frozen=True, slots=True)
class RecordBounds:
    """The most one Kinesis record may expand to (see the module docstring for the defaults)."""

    max_bytes: int = MAX_RECORD_INFLATED_BYTES
    max_messages: int = MAX_RECORD_MESSAGES

    def __post_init__(self) -> None:
        """Reject bounds that no record could meet."""
        if self.max_bytes < 1 or self.max_messages < 1:
            raise ValueError("record bounds must be >= 1")


DEFAULT_BOUNDS: Final = RecordBounds()


class ExpansionBudget:
    """What is left of one record's bounds while it is being read; raises as soon as it is overspent."""

    __slots__ = ("bounds", "bytes_left", "messages_left")

    def __init__(self, bounds: RecordBounds = DEFAULT_BOUNDS) -> None:
        """A full budget for one record."""
        self.bounds = bounds
        self.bytes_left = bounds.max_bytes
        self.messages_left = bounds.max_messages

    def spend(
        self, nbytes: int, messages: int, error: type[RecordTooLargeError] = RecordTooLargeError
    ) -> None:
        """Account for ``nbytes`` of message bytes and ``messages`` messages just produced.

        Raises ``error`` (a :class:`RecordTooLargeError`) if either goes past the record's bounds.
        """
        self.bytes_left -= nbytes
        self.messages_left -= messages
        if self.bytes_left < 0:
            raise error(
                f"record inflates past {self.bounds.max_bytes} bytes (the bound for one Kinesis record)"
            )
        if self.messages_left < 0:
            raise error(
                f"record expands past {self.bounds.max_messages} messages (the bound for one Kinesis record)"
            )
