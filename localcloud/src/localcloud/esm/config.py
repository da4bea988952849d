"""One event source mapping's configuration, read from Lambda ListEventSourceMappings.

moto 5.2.5 returns only the keys it was given (plus BatchSize / StartingPosition defaults), so every
missing key is filled with the AWS default here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

# The Lambda invoke payload limit caps every batch.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


class SourceKind(Enum):
    """The stream service behind a mapping."""

    KINESIS = "kinesis"
    DYNAMODB = "dynamodb"


def source_kind(event_source_arn: str) -> SourceKind | None:
    """Return the stream kind of an event source ARN, or None for sources this engine ignores."""
    parts = event_source_arn.split(":", 5)
    if len(parts) < 6:
        return None
    service = parts[2]
    if service == "kinesis" and ":stream/" in event_source_arn and "/consumer/" not in event_source_arn:
        return SourceKind.KINESIS
    if service == "dynamodb" and "/stream/" in event_source_arn:
        return SourceKind.DYNAMODB
    return None


def arn_region(arn: str) -> str:
    """The region field of an ARN."""
    return arn.split(":")[3]


@dataclass(frozen=True)
class MappingConfig:
    """The parameters that drive one Kinesis or DynamoDB Streams mapping (AWS defaults applied)."""

    uuid: str
    function_arn: str
    event_source_arn: str
    kind: SourceKind
    enabled: bool = True
    batch_size: int = 100
    maximum_batching_window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_position_timestamp: float | None = None
    parallelization_factor: int = 1
    maximum_retry_attempts: int = -1
    maximum_record_age_s: int = -1
    bisect_on_error: bool = False
    report_batch_item_failures: bool = False
    tumbling_window_s: int = 0
    on_failure_destination: str | None = None
    filter_patterns: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stream_name(self) -> str:
        """The Kinesis stream name, or the table name for a DynamoDB stream."""
        resource = self.event_source_arn.split(":", 5)[5]
        return resource.split("/")[1]

    def fingerprint(self) -> str:
        """A string that changes whenever a parameter that affects processing changes."""
        return json.dumps(self.__dict__, default=str, sort_keys=True)

    @classmethod
    def from_api(cls, raw: dict[str, Any]) -> MappingConfig | None:
        """Build from one ListEventSourceMappings entry; None for non-stream (e.g. SQS) mappings."""
        arn = str(raw.get("EventSourceArn") or "")
        kind = source_kind(arn)
        if kind is None:
            return None
        state = raw.get("State")
        # Transitional states of a mapping that is (or is about to be) active count as enabled.
        active = ("Enabled", "Enabling", "Creating", "Updating")
        enabled = bool(raw.get("Enabled", True)) if state is None else state in active
        timestamp = raw.get("StartingPositionTimestamp")
        if isinstance(timestamp, datetime):
            timestamp = timestamp.timestamp()
        destination = ((raw.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        filters = (raw.get("FilterCriteria") or {}).get("Filters") or []
        window = int(raw.get("TumblingWindowInSeconds") or 0)
        return cls(
            uuid=str(raw["UUID"]),
            function_arn=str(raw["FunctionArn"]),
            event_source_arn=arn,
            kind=kind,
            enabled=enabled,
            batch_size=int(raw.get("BatchSize") or 100),
            maximum_batching_window_s=float(raw.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=str(raw.get("StartingPosition") or "TRIM_HORIZON"),
            starting_position_timestamp=float(timestamp) if timestamp is not None else None,
            parallelization_factor=max(1, min(10, int(raw.get("ParallelizationFactor") or 1))),
            maximum_retry_attempts=_int_or(raw.get("MaximumRetryAttempts"), -1),
            maximum_record_age_s=_int_or(raw.get("MaximumRecordAgeInSeconds"), -1),
            bisect_on_error=bool(raw.get("BisectBatchOnFunctionError") or False),
            report_batch_item_failures="ReportBatchItemFailures" in (raw.get("FunctionResponseTypes") or []),
            tumbling_window_s=window,
            on_failure_destination=str(destination) if destination else None,
            filter_patterns=tuple(str(f.get("Pattern", "")) for f in filters if f.get("Pattern")),
        )


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)
