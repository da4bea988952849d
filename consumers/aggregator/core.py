"""The aggregator's logic, independent of Lambda: one invocation of a (tumbling-window) batch.

Tumbling windows: Lambda passes the window's state between invocations; we accumulate each racer's
per-second outputs in it and merge into DynamoDB once, at the window's final invocation (or earlier
when the state would outgrow its budget). Without a window (no ``window`` key in the event) every
batch is merged straight away.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from consumers.aggregator.records import decode_clean_batch, decode_record
from consumers.aggregator.window_state import from_state, state_size, to_state
from consumers.quarantine import PoisonRecord
from leaderboard.domain import RaceStore, ShardProgress, WindowAccumulator, WindowReport, apply_window

# The shard's progress is recorded at most this often per shard and execution environment: the
# closer judges idleness in minutes, so a write a second is plenty.
_PROGRESS_EVERY = timedelta(seconds=1)


@dataclass
class InvocationSummary:
    """What one invocation did, for logs and metrics."""

    records: int = 0
    messages: int = 0
    poison: int = 0
    failed_records: int = 0
    flushed: bool = False
    early_flush: bool = False
    terminated_early: bool = False
    report: WindowReport | None = None


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause the cycle collector (reference counting still frees everything at once).

    Decoding a batch allocates thousands of short-lived, acyclic dicts and tuples; each time they
    cross the collector's threshold it scans them (and, now and then, every live object) for cycles
    it cannot find. Pausing it for the invocation saves ~10% of the aggregator's time; it runs again
    right after, on whatever the invocation left behind.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class WindowAggregator:
    """Accumulates racer messages per window and merges them into the race store."""

    def __init__(
        self,
        store: RaceStore,
        quarantine: Callable[[Sequence[PoisonRecord]], None],
        state_budget_bytes: int,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Write to ``store``; park each record's poison with one ``quarantine`` call (it batches)."""
        self._store = store
        self._quarantine = quarantine
        self._budget = state_budget_bytes
        self._clock = clock
        self._progress_written: dict[str, datetime] = {}

    def handle(self, event: Mapping[str, Any]) -> tuple[dict[str, Any], InvocationSummary]:
        """Process one invocation's event and return Lambda's response plus a summary."""
        with _cyclic_gc_paused():
            return self._handle(event)

    def _handle(self, event: Mapping[str, Any]) -> tuple[dict[str, Any], InvocationSummary]:
        response, summary = self._aggregate(event)
        # Only once the batch is handled (merged or held in the window's state): the race closer
        # takes it as what the stream has delivered.
        self._record_progress(event)
        return response, summary

    def _record_progress(self, event: Mapping[str, Any]) -> None:
        """Tell the race closer how far this shard is read and how far behind the stream that is."""
        arrivals = [
            r["kinesis"]["approximateArrivalTimestamp"]
            for r in event.get("Records") or []
            if isinstance(r.get("kinesis", {}).get("approximateArrivalTimestamp"), (int, float))
        ]
        shard = event.get("shardId") or (event.get("Records") or [{}])[0].get("eventID", "").split(":")[0]
        if not arrivals or not shard:
            return
        now = self._clock()
        last = self._progress_written.get(shard)
        if last is not None and now - last < _PROGRESS_EVERY:
            return
        self._store.record_progress(ShardProgress(shard, int(max(arrivals) * 1000), now))
        self._progress_written[shard] = now

    def _aggregate(self, event: Mapping[str, Any]) -> tuple[dict[str, Any], InvocationSummary]:
        summary = InvocationSummary()
        windowed = "window" in event
        window = from_state(event.get("state")) if windowed else WindowAccumulator()

        records = event.get("Records") or []
        failures: list[dict[str, str]] = []
        if records:
            failures = self._accumulate(records, window, summary)

        if not windowed:
            summary.report = apply_window(self._store, window)
            summary.flushed = True
            return {"batchItemFailures": failures}, summary

        summary.terminated_early = bool(event.get("isWindowTerminatedEarly"))
        if event.get("isFinalInvokeForWindow"):
            summary.report = apply_window(self._store, window)
            summary.flushed = True
            return {"state": {}, "batchItemFailures": failures}, summary

        # Lambda ends a window whose state passes 1 MB; writing early keeps us well under that.
        state = to_state(window)
        if state_size(state) > self._budget:
            summary.report = apply_window(self._store, window)
            summary.flushed = summary.early_flush = True
            return {"state": {}, "batchItemFailures": failures}, summary
        return {"state": state, "batchItemFailures": failures}, summary

    def _accumulate(
        self, records: list[dict[str, Any]], window: WindowAccumulator, summary: InvocationSummary
    ) -> list[dict[str, str]]:
        """Decode every record into the window; quarantine poison; report records we could not park."""
        summary.records = len(records)
        columns = decode_clean_batch(records)
        if columns is not None:
            summary.messages += window.add_columns(columns)
            return []
        return self._accumulate_each(records, window, summary)

    def _accumulate_each(
        self, records: list[dict[str, Any]], window: WindowAccumulator, summary: InvocationSummary
    ) -> list[dict[str, str]]:
        """The per-record path (powertools BatchProcessor) for batches holding a bad record."""

        def on_record(record: KinesisStreamRecord) -> None:
            outcome = decode_record(record)
            # Quarantine first: if SQS refuses, the record fails and is retried, so nothing is lost.
            # One call per record, not per message: a record can hold thousands of bad lines.
            if outcome.poison:
                self._quarantine(outcome.poison)
            summary.messages += window.add_readings(outcome.messages)
            summary.poison += outcome.malformed

        # A whole batch failing (e.g. the failure queue is down) is reported as item failures rather
        # than raised, so window state for the records that did succeed is still returned.
        processor = BatchProcessor(
            event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
        )
        with processor(records=records, handler=on_record):
            processor.process()
        response = processor.response()
        failures = [
            {"itemIdentifier": str(item["itemIdentifier"])} for item in response.get("batchItemFailures", [])
        ]
        summary.failed_records = len(failures)
        return failures
