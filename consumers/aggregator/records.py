"""From a Kinesis record to racer messages: de-aggregation, validation, quarantine."""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from consumers.quarantine import MAX_PARKED_PER_RECORD, PoisonRecord, cap_poison
from leaderboard.domain import MalformedMessageError
from leaderboard.domain.messages import (
    EMPTY_COLUMNS,
    RacerReading,
    ReadingColumns,
    columns_of,
    parse_reading,
    parse_reading_array,
    quick_columns,
)
from streamformat import (
    BATCH_MAGIC,
    MAGIC,
    RecordTooLargeError,
    batch_lines,
    is_aggregated,
    read_messages,
)

# Record data starting with either needs unpacking; anything else is one plain JSON message.
_PACKED = (MAGIC, BATCH_MAGIC)


@dataclass
class RecordOutcome:
    """What one Kinesis record held."""

    messages: list[RacerReading] = field(default_factory=list)
    # What to park: at most the cap's worth of messages one by one, then the whole record.
    poison: list[PoisonRecord] = field(default_factory=list)
    # Malformed messages found (1 for a record that cannot be read at all), parked or not.
    malformed: int = 0


def decode_record(
    record: KinesisStreamRecord, parked_per_record: int = MAX_PARKED_PER_RECORD
) -> RecordOutcome:
    """Decode one Kinesis record (plain JSON, KPL-aggregated, compressed) into messages and poison.

    A malformed aggregate (bad protobuf, checksum mismatch, a damaged compressed batch) or a record
    expanding past :mod:`streamformat`'s bounds is one poison record; inside a valid aggregate
    each message is judged on its own, and its position in the record (counting the messages of
    compressed batches) is the poison's sub-sequence. Past ``parked_per_record`` malformed
    messages, the rest of the record is one whole-record poison entry (see
    :func:`consumers.quarantine.cap_poison`).
    """
    outcome = RecordOutcome()
    kinesis = record.kinesis
    data = kinesis.data_as_bytes()

    def poison(payload: bytes, reason: str, sub: int | None) -> PoisonRecord:
        return PoisonRecord(
            payload=payload,
            reason=reason,
            source="kinesis",
            event_source_arn=record.event_source_arn,
            partition_key=kinesis.partition_key,
            sequence_number=kinesis.sequence_number,
            sub_sequence=sub,
        )

    try:
        payloads = read_messages(data)
    except RecordTooLargeError as exc:
        # It can never be read, so it is parked whole, once, and the shard moves on.
        outcome.poison.append(poison(data, str(exc), None))
        outcome.malformed = 1
        return outcome
    except ValueError as exc:
        outcome.poison.append(poison(data, f"bad aggregated record: {exc}", None))
        outcome.malformed = 1
        return outcome
    packed = is_aggregated(data) or data.startswith(BATCH_MAGIC)
    for index, payload in enumerate(payloads):
        try:
            outcome.messages.append(parse_reading(payload))
        except MalformedMessageError as exc:
            outcome.malformed += 1
            # Past the cap only counted: thousands of poison entries would only be dropped again.
            if outcome.malformed <= parked_per_record:
                outcome.poison.append(poison(payload, str(exc), index if packed else None))
    if outcome.malformed > parked_per_record:
        whole = poison(data, "", None)
        outcome.poison = cap_poison(outcome.poison, whole, outcome.malformed, parked_per_record)
    return outcome


def decode_clean_batch(records: list[dict[str, Any]]) -> ReadingColumns | None:
    """Every message of the batch validated in one pass, or None if any payload is not a message.

    The common case (every record valid) costs one validation over a JSON array of all the
    payloads instead of one per record: first the column-wise check (``quick_columns``), and if that
    is in any doubt pydantic's validation of the whole array. A batch with any bad record returns
    None and goes through the per-record path, which finds, quarantines and reports the bad ones.
    Joining payloads with commas cannot hide a bad one: a payload holding zero or several JSON
    values either breaks the array's syntax or changes the element count, which is checked. The
    lines of a compressed batch join the same way (newlines become commas) and count the same way.
    """
    a2b = binascii.a2b_base64
    try:
        # Not strict, like the per-record path (powertools' base64 decoding): both read the same bytes.
        datas = [a2b(record["kinesis"]["data"]) for record in records]
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None
    if not datas:
        return EMPTY_COLUMNS
    joined = b",".join(datas)
    # Neither magic can occur in a valid JSON text (0x00 and a lone 0xF3 0x89 0x9A 0xC2 are not
    # valid there), so one search over the joined bytes tells whether any record needs unpacking.
    if BATCH_MAGIC in joined or MAGIC in joined:
        unpacked = _unpack(datas)
        if unpacked is None:
            return None
        joined, expected = unpacked
    else:
        expected = len(datas)
    if not joined:
        return EMPTY_COLUMNS
    array = b"[" + joined + b"]"
    columns = quick_columns(array)
    if columns is None:
        try:
            columns = columns_of(parse_reading_array(array))
        except MalformedMessageError:
            return None
    return columns if len(columns.race_ids) == expected else None


def _unpack(datas: list[bytes]) -> tuple[bytes, int] | None:
    """Aggregates and compressed batches expanded: (comma-joined messages, count), None if damaged."""
    parts: list[bytes] = []
    expected = 0
    try:
        for data in datas:
            if not data.startswith(_PACKED):
                parts.append(data)
                expected += 1
            elif data.startswith(BATCH_MAGIC):
                expected += _add_batch(parts, data)
            else:
                payloads = read_messages(data)
                parts += payloads
                expected += len(payloads)
    except ValueError:
        return None
    return b",".join(parts), expected


def _add_batch(parts: list[bytes], data: bytes) -> int:
    """Append a compressed batch's lines as one comma-joined part; returns its message count."""
    lines = batch_lines(data)
    parts.append(lines.replace(b"\n", b","))
    return lines.count(b"\n") + 1
