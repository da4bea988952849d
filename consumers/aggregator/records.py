"""From a Kinesis record to racer messages: de-aggregation, validation, quarantine."""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from pydantic import TypeAdapter, ValidationError

from consumers.quarantine import PoisonRecord
from leaderboard.domain import MalformedMessageError, RacerMessage, parse_message
from producers.aggregation import deaggregate, is_aggregated


@dataclass
class RecordOutcome:
    """What one Kinesis record held."""

    messages: list[RacerMessage] = field(default_factory=list)
    poison: list[PoisonRecord] = field(default_factory=list)


def decode_record(record: KinesisStreamRecord) -> RecordOutcome:
    """Decode one Kinesis record (plain JSON or KPL-aggregated) into valid messages and poison.

    A malformed aggregate (bad protobuf, checksum mismatch) is one poison record; inside a valid
    aggregate each user record is judged on its own.
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
        payloads = deaggregate(data)
    except ValueError as exc:
        outcome.poison.append(poison(data, f"bad aggregated record: {exc}", None))
        return outcome
    aggregated = is_aggregated(data)
    for index, payload in enumerate(payloads):
        try:
            outcome.messages.append(parse_message(payload))
        except MalformedMessageError as exc:
            outcome.poison.append(poison(payload, str(exc), index if aggregated else None))
    return outcome


_MESSAGE_LIST = TypeAdapter(list[RacerMessage])


def decode_clean_batch(records: list[dict[str, Any]]) -> list[RacerMessage] | None:
    """Every message of the batch validated in one pass, or None if any payload is not a message.

    The common case (every record valid) costs one validation call over a JSON array of all the
    payloads instead of one per record; a batch with any bad record returns None and goes through
    the per-record path, which finds, quarantines and reports the bad ones. Joining payloads with
    commas cannot hide a bad one: a payload holding zero or several JSON values either breaks the
    array's syntax or changes the element count, which is checked.
    """
    payloads: list[bytes] = []
    try:
        for record in records:
            payloads.extend(deaggregate(b64decode(record["kinesis"]["data"], validate=True)))
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None
    try:
        messages = _MESSAGE_LIST.validate_json(b"[" + b",".join(payloads) + b"]")
    except ValidationError:
        return None
    return messages if len(messages) == len(payloads) else None
