"""Tumbling windows: window arithmetic and the state carried between invocations."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .records import StreamRecord, iso_seconds

# AWS limits window state to 1 MB per shard; beyond it the window ends early.
MAX_STATE_BYTES = 1024 * 1024


def window_start(arrival: float, size_s: int) -> int:
    """Epoch-aligned start of the window that contains ``arrival`` (floor(t / W) * W)."""
    return math.floor(arrival / size_s) * size_s


def state_size(state: dict[str, Any]) -> int:
    """The state's serialised size in bytes, as it would travel in the next event."""
    return len(json.dumps(state, separators=(",", ":")).encode())


@dataclass
class Window:
    """The open window of one shard."""

    start: int
    size_s: int
    state: dict[str, Any] = field(default_factory=dict)
    # The records aggregated into this window so far (for the failure destination, if its final
    # invocation never succeeds).
    first_sequence: str | None = None
    last_sequence: str | None = None
    first_arrival: float = 0.0
    last_arrival: float = 0.0
    count: int = 0

    @property
    def end(self) -> int:
        """Exclusive end of the window, epoch seconds."""
        return self.start + self.size_s

    def contains(self, arrival: float) -> bool:
        """True when a record inserted at ``arrival`` belongs here (late records stay in the open window)."""
        return window_start(arrival, self.size_s) <= self.start

    def absorb(self, records: Sequence[StreamRecord]) -> None:
        """Remember the records that have been aggregated into this window."""
        if not records:
            return
        if self.first_sequence is None:
            self.first_sequence = records[0].sequence_number
            self.first_arrival = records[0].arrival
        self.last_sequence = records[-1].sequence_number
        self.last_arrival = records[-1].arrival
        self.count += len(records)

    def event_fields(self, shard_id: str, source_arn: str, *, final: bool, early: bool) -> dict[str, Any]:
        """The extra event fields of a tumbling-window invocation."""
        return {
            "window": {"start": iso_seconds(self.start), "end": iso_seconds(self.end)},
            "state": self.state,
            "shardId": shard_id,
            "eventSourceARN": source_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }

    def to_json(self) -> dict[str, Any]:
        """For the checkpoint file."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Window:
        """From the checkpoint file."""
        return cls(**raw)
