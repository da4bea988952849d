"""The KCL record processor: one per shard lease, an adapter over the aggregator's domain core.

The MultiLangDaemon (Java) owns leases, reading and checkpoint storage; it runs this process once
per shard it holds and talks to it over stdin/stdout (amazon-kclpy's protocol). Records are decoded
by the same reader as the Lambda aggregator (:mod:`consumers.aggregator.records`, which
de-aggregates through :func:`streamformat.read_messages`), accumulated in the same
:class:`~leaderboard.domain.WindowAccumulator` and merged through the same race store with
:func:`~leaderboard.domain.apply_window`, so both paths write identical standings.

Checkpoints follow the merge: a window's records are checkpointed only after its merge has landed,
so a crash replays at most the open window, and replaying is harmless (a racer's second counts
once however often it is merged).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from amazon_kclpy.kcl import CheckpointError
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from consumers.aggregator.records import decode_clean_batch, decode_record
from consumers.quarantine import PoisonRecord
from leaderboard.domain import RaceStore, WindowAccumulator, apply_window

LOG = logging.getLogger(__name__)
# Throttled checkpoints (the lease table is busy) are retried this often before giving up until the
# next window's checkpoint, which covers this one's records too.
_CHECKPOINT_ATTEMPTS = 5
# The lease is gone (or the daemon is shutting down): retrying cannot help.
_FINAL_CHECKPOINT_ERRORS = ("ShutdownException", "InvalidStateException")


class Checkpointer(Protocol):
    """What the KCL hands each call: ``checkpoint()`` at a record, or at the last one delivered."""

    def checkpoint(self, sequence_number: str | None = None, sub_sequence_number: int | None = None) -> None:
        """Record that everything up to (and including) the position is processed."""


class KclRecord(Protocol):
    """A record as amazon-kclpy delivers it (``data`` is base64, as in Lambda's Kinesis events)."""

    @property
    def data(self) -> str: ...

    @property
    def partition_key(self) -> str: ...

    @property
    def sequence_number(self) -> str: ...

    @property
    def sub_sequence_number(self) -> int | None: ...


@dataclass(frozen=True)
class ProcessorConfig:
    """How a shard's processor windows its records."""

    stream_arn: str
    # A window is merged this long after its first record arrived (the Lambda path's tumbling
    # window), or sooner when it holds ``max_window_messages``.
    window_seconds: float = 5.0
    max_window_messages: int = 200_000
    # A failed merge or quarantine (throttling, a queue that is down) is retried after this long;
    # the window is kept and nothing is checkpointed meanwhile, as the Lambda path's retries do.
    retry_delay_s: float = 1.0


class ShardProcessor:
    """One shard's record processor, with KCL's lifecycle (amazon_kclpy.v3.processor's methods)."""

    # amazon-kclpy dispatches by this: 3 is the interface with lease_lost / shard_ended.
    version = 3

    def __init__(
        self,
        store: RaceStore,
        quarantine: Callable[[Sequence[PoisonRecord]], None],
        config: ProcessorConfig,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Merge into ``store``; park poison with ``quarantine``; time windows with ``clock``."""
        self._store = store
        self._quarantine = quarantine
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self.shard_id = ""
        self._window = WindowAccumulator()
        self._opened_at: float | None = None
        # The last record accumulated in the open window: where to checkpoint once it has merged.
        self._position: tuple[str, int | None] | None = None
        self.merged_messages = 0
        self.checkpoints = 0
        self._seen_records = False

    # -- the KCL's calls --------------------------------------------------------------------------

    def initialize(self, initialize_input: Any) -> None:
        """A lease was acquired: start with an empty window (the KCL resumes at the checkpoint)."""
        self.shard_id = str(initialize_input.shard_id)
        LOG.info("shard %s: processing from %s", self.shard_id, initialize_input.sequence_number)

    def process_records(self, process_records_input: Any) -> None:
        """Accumulate the records; merge and checkpoint when the window is due.

        Also called with no records (``callProcessRecordsEvenForEmptyRecordList``), so that a
        window closes on time when its shard goes quiet, as the last window of a race does.
        """
        records: list[KclRecord] = list(process_records_input.records or [])
        if records:
            if not self._seen_records:
                # Logged with the wall clock: operators (and the resharding test) see that a child
                # shard's first records came after its parents ended.
                self._seen_records = True
                LOG.info("shard %s: first records at %.3f", self.shard_id, time.time())
            self._accumulate(records)
        if self._due():
            self._flush(process_records_input.checkpointer)

    def lease_lost(self, lease_lost_input: Any) -> None:
        """Another worker owns the shard now: drop the window unmerged and do not checkpoint.

        The new owner resumes at our last checkpoint and replays the window, which is harmless.
        """
        LOG.info("shard %s: lease lost, dropping %d messages", self.shard_id, self._window.messages)
        self._reset()

    def shard_ended(self, shard_ended_input: Any) -> None:
        """The shard was split or merged: merge what is left and checkpoint at its end (always).

        The KCL starts the child shards only after this checkpoint (parent before child).
        """
        self._merge_until_landed()
        self._checkpoint(shard_ended_input.checkpointer, None)
        LOG.info("shard %s: read to its end at %.3f", self.shard_id, time.time())

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        """The worker is stopping: merge the open window, then checkpoint where it ended."""
        position = self._position
        if position is not None:
            self._merge_until_landed()
            self._checkpoint(shutdown_requested_input.checkpointer, position)

    # -- the work --------------------------------------------------------------------------------

    def _accumulate(self, records: list[KclRecord]) -> None:
        if self._opened_at is None:
            self._opened_at = self._clock()
        events = [self._lambda_shape(record) for record in records]
        columns = decode_clean_batch(events)
        if columns is not None:
            self._window.add_columns(columns)
        else:
            for event in events:
                outcome = decode_record(KinesisStreamRecord(event))
                if outcome.poison:
                    # Parked before the window can merge past it, so a record is never checkpointed
                    # unless its poison is in the queue.
                    self._retry_until_done(partial(self._quarantine, outcome.poison), "quarantine")
                self._window.add_readings(outcome.messages)
        last = records[-1]
        self._position = (str(last.sequence_number), last.sub_sequence_number)

    def _lambda_shape(self, record: KclRecord) -> dict[str, Any]:
        """The record as the Lambda path's reader takes it (so both paths share one decoder)."""
        return {
            "eventSourceARN": self._config.stream_arn,
            "kinesis": {
                "data": record.data,
                "partitionKey": record.partition_key,
                "sequenceNumber": str(record.sequence_number),
            },
        }

    def _due(self) -> bool:
        if self._opened_at is None:
            return False
        if self._window.messages >= self._config.max_window_messages:
            return True
        return self._clock() - self._opened_at >= self._config.window_seconds

    def _flush(self, checkpointer: Checkpointer) -> None:
        position = self._position
        self._merge_until_landed()
        if position is not None:
            self._checkpoint(checkpointer, position)

    def _merge_until_landed(self) -> None:
        window = self._window
        if not window.is_empty:
            self._retry_until_done(lambda: apply_window(self._store, window), "merge")
            self.merged_messages += window.messages
        self._reset()

    def _reset(self) -> None:
        self._window = WindowAccumulator()
        self._opened_at = None
        self._position = None

    def _retry_until_done(self, action: Callable[[], object], what: str) -> None:
        """Run ``action`` until it succeeds: the shard waits, as the Lambda path retries its batch.

        The lease stays ours while we wait (the daemon renews it), and if it is lost meanwhile the
        KCL stops this process; nothing was checkpointed, so the new owner replays the window.
        """
        while True:
            try:
                action()
                return
            except Exception:  # any failure: retried; the error is logged for operators
                LOG.exception("shard %s: %s failed; retrying", self.shard_id, what)
                self._sleep(self._config.retry_delay_s)

    def _checkpoint(self, checkpointer: Checkpointer, position: tuple[str, int | None] | None) -> None:
        """Checkpoint; retried while throttled, given up when the lease has gone (then the new
        owner replays from the previous checkpoint, which is harmless)."""
        sequence, sub = position if position is not None else (None, None)
        for attempt in range(1, _CHECKPOINT_ATTEMPTS + 1):
            try:
                checkpointer.checkpoint(sequence, sub)
            except CheckpointError as exc:
                if (
                    exc.value in ("ShutdownException", "InvalidStateException")
                    or attempt == _CHECKPOINT_ATTEMPTS
                ):
                    LOG.warning("shard %s: checkpoint not taken: %s", self.shard_id, exc.value)
                    return
                self._sleep(self._config.retry_delay_s)
            else:
                self.checkpoints += 1
                return
