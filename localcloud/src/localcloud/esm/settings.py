"""Timing knobs of the mapping engine, and the clock it reads.

Tests shrink these durations; none of them changes what the engine does, only how long it waits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time in epoch seconds (injected so window and age logic can be tested)."""

    def time(self) -> float:
        """Return the current time as epoch seconds."""
        ...


class SystemClock:
    """The real wall clock."""

    def time(self) -> float:
        """Return ``time.time()``."""
        return time.time()


@dataclass(frozen=True)
class EngineSettings:
    """How often the engine polls and how long it backs off.

    The defaults follow AWS: Kinesis shards are polled once per second at base rate, DynamoDB
    streams four times per second, and an idle tumbling window is closed two minutes after its end.
    """

    # ListEventSourceMappings re-read period of the background thread.
    sync_interval_s: float = 1.0
    # ListShards / DescribeStream period, to discover resharding.
    shard_refresh_interval_s: float = 1.0
    # Base rate per shard; polling continues without waiting while records remain.
    kinesis_poll_interval_s: float = 1.0
    dynamodb_poll_interval_s: float = 0.25
    # How long after its end an idle tumbling window is still kept open (AWS: up to 2 minutes).
    window_idle_wait_s: float = 120.0
    # Back-off after a failed stream read (GetRecords / GetShardIterator error).
    error_backoff_s: float = 1.0
    error_backoff_max_s: float = 30.0
    # Back-off between retries of a batch whose invocation failed.
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    # Back-off while the invoker reports throttling or an internal error (not a function error).
    throttle_backoff_s: float = 0.5
    throttle_backoff_max_s: float = 10.0
    # Upper bound of records read ahead per shard while batches are in flight.
    read_ahead_records: int = 10_000
