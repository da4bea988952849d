"""Kinesis Data Streams service limits that the producer enforces client-side.

Source: the PutRecords API reference. Checking them before sending turns an opaque
``ValidationException`` for a whole request into a clear error for the one record at fault.
"""

from __future__ import annotations

from typing import Final

from streamformat import MAX_RECORD_BYTES as _RECORD_LIMIT

MAX_RECORDS_PER_REQUEST: Final = 500
"""Records per PutRecords call."""

MAX_REQUEST_BYTES: Final = 5 * 1024 * 1024
"""Bytes per PutRecords call: every record's data plus its partition key."""

MAX_RECORD_BYTES: Final = _RECORD_LIMIT
"""Bytes per record: data plus partition key (UTF-8). The record formats are bound by it too, so
:mod:`streamformat` holds the one definition."""

MAX_PARTITION_KEY_CHARS: Final = 256
"""Unicode characters in a partition key (at least one)."""

KPL_AGGREGATION_MAX_BYTES: Final = 51_200
"""The Kinesis Producer Library's default AggregationMaxSize: small enough that one slow race
does not hold a megabyte hostage, large enough to pack ~300 Alleycat messages per record."""
