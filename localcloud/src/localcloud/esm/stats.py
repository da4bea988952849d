"""Per mapping and shard counters, and the snapshot the engine reports."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ShardStats:
    """A snapshot of one mapping's work on one shard."""

    mapping_uuid: str
    function_arn: str
    event_source_arn: str
    shard_id: str
    state: str
    # ms between now and the arrival of the last record read; 0 when read to the tip.
    iterator_age_ms: int
    # Invocations carrying records (retries included), and the records they delivered successfully.
    batches: int
    records: int
    # Records consumed without an invocation because no filter matched.
    filtered: int
    # Failed invocations (function errors, batch and partial failures).
    errors: int
    retries: int
    # Invocations refused by the invoker (throttles, internal errors); they never consume retries.
    throttles: int
    destination_records: int
    destination_sends: int
    window_final_invocations: int
    last_invoke_duration_ms: float
    checkpoint: str | None


class ShardCounters:
    """Mutable counters behind :class:`ShardStats` (updated from worker threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches = 0
        self.records = 0
        self.filtered = 0
        self.errors = 0
        self.retries = 0
        self.throttles = 0
        self.destination_records = 0
        self.destination_sends = 0
        self.window_final_invocations = 0
        self.last_invoke_duration_ms = 0.0

    def add(self, **deltas: int) -> None:
        """Increment named counters."""
        with self.lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)
