"""From a Kinesis record to racer messages: de-aggregation, validation, quarantine."""

from __future__ import annotations

from dataclasses import dataclass, field

from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

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
