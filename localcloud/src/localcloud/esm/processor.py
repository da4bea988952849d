"""Delivering one batch: invoke, retry, bisect, honour partial failures, age out, send to destination.

The processor runs a batch until every record in it is resolved: delivered, or handed to the
on-failure destination (or discarded when there is none). Resolved records are reported through a
callback so the shard worker can move its checkpoint.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from localcloud.invocation import FunctionNotFoundError, InvocationResult, TooManyRequestsError

from .config import MappingConfig
from .destination import RECORD_AGE_EXCEEDED, RETRY_ATTEMPTS_EXHAUSTED, FailureDestination, failure_record
from .records import StreamRecord
from .sender import FunctionSender, Outcome, Verdict, interpret
from .settings import Clock, EngineSettings
from .sources import StreamSource
from .stats import ShardCounters
from .windows import MAX_STATE_BYTES, Window, state_size

_log = logging.getLogger(__name__)

# Attempts to hand records to a destination before giving up on it (the failure is logged).
_DESTINATION_ATTEMPTS = 5


class StopRequestedError(Exception):
    """The engine is stopping; unresolved records stay unconfirmed and are read again later."""


class Backoff:
    """Exponential back-off that resets after a success."""

    def __init__(self, base_s: float, max_s: float) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self._next = base_s

    def next_delay(self) -> float:
        """The delay to wait now; doubles for the next call."""
        delay = self._next
        self._next = min(self.max_s, self._next * 2)
        return delay

    def reset(self) -> None:
        """Back to the base delay."""
        self._next = self.base_s


@dataclass
class _Unit:
    """Records retried together; halves of a bisected batch inherit the counts."""

    records: list[StreamRecord]
    retries: int = 0
    invokes: int = 0


class BatchProcessor:
    """Processes the batches of one shard (or one sub-stream of it)."""

    def __init__(
        self,
        *,
        config: MappingConfig,
        shard_id: str,
        source: StreamSource,
        sender: FunctionSender,
        destination: FailureDestination | None,
        counters: ShardCounters,
        settings: EngineSettings,
        clock: Clock,
        stopping: threading.Event,
        role_arn: str,
        resolve: Callable[[Sequence[StreamRecord]], None],
        commit_lock: threading.Lock | None = None,
    ) -> None:
        self.config = config
        self.shard_id = shard_id
        self.source = source
        self.sender = sender
        self.destination = destination
        self.counters = counters
        self.settings = settings
        self.clock = clock
        self.stopping = stopping
        self.role_arn = role_arn
        self.resolve = resolve
        # Held while a window's state and the resolved records change together, so a checkpoint
        # snapshot never pairs a new state with an old position (or the reverse).
        self.commit_lock = commit_lock or threading.Lock()

    # -- helpers -------------------------------------------------------------------------------

    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise StopRequestedError

    def _check_stop(self) -> None:
        if self.stopping.is_set():
            raise StopRequestedError

    def _invoke(self, event: dict[str, Any], throttle: Backoff) -> InvocationResult | None:
        """One invocation; None when the invoker refused it (throttle or internal error)."""
        try:
            result = self.sender.send(event)
        except TooManyRequestsError:
            self.counters.add(throttles=1)
            self._sleep(throttle.next_delay())
            return None
        except FunctionNotFoundError:
            _log.warning(
                "mapping %s: function %s not found; retrying", self.config.uuid, self.sender.function
            )
            self.counters.add(throttles=1)
            self._sleep(max(throttle.next_delay(), self.settings.error_backoff_s))
            return None
        except Exception:
            _log.exception("mapping %s: invoker failed (internal error); retrying", self.config.uuid)
            self.counters.add(throttles=1)
            self._sleep(throttle.next_delay())
            return None
        throttle.reset()
        with self.counters.lock:
            self.counters.last_invoke_duration_ms = result.duration_ms
        return result

    def _expired_prefix(self, records: Sequence[StreamRecord]) -> int:
        limit = self.config.maximum_record_age_s
        if limit < 0:
            return 0
        now = self.clock.time()
        count = 0
        for record in records:
            if now - record.arrival <= limit:
                break
            count += 1
        return count

    def _retries_exhausted(self, retries: int) -> bool:
        limit = self.config.maximum_retry_attempts
        return limit >= 0 and retries >= limit

    def _give_up(
        self,
        records: Sequence[StreamRecord],
        *,
        condition: str,
        invoke_count: int,
        result: InvocationResult | None,
        payload: dict[str, Any] | None,
        window: Window | None = None,
        absorb_into: Window | None = None,
    ) -> None:
        """Hand records (or a window) to the on-failure destination, then resolve them.

        ``absorb_into`` is the open window the records belong to (they count as aggregated there).
        """
        bounds = None
        if window is not None and window.first_sequence is not None and window.last_sequence is not None:
            bounds = (
                window.first_sequence,
                window.last_sequence,
                window.first_arrival,
                window.last_arrival,
                window.count,
            )
        count = len(records) if bounds is None else bounds[4]
        if self.destination is None:
            _log.warning(
                "mapping %s shard %s: discarding %d record(s) (%s), no on-failure destination",
                self.config.uuid,
                self.shard_id,
                count,
                condition,
            )
        elif records or bounds is not None:
            document = failure_record(
                self.config,
                self.shard_id,
                records,
                condition=condition,
                invoke_count=invoke_count,
                result=result,
                now=self.clock.time(),
                window_bounds=bounds,
            )
            self._deliver(document, payload, count)
        if records:
            with self.commit_lock:
                if absorb_into is not None:
                    absorb_into.absorb(records)
                self.resolve(records)

    def _deliver(self, document: dict[str, Any], payload: dict[str, Any] | None, count: int) -> None:
        assert self.destination is not None
        backoff = Backoff(self.settings.error_backoff_s, self.settings.error_backoff_max_s)
        for attempt in range(1, _DESTINATION_ATTEMPTS + 1):
            try:
                self.destination.send(document, payload, self.shard_id)
            except Exception:
                _log.exception(
                    "mapping %s: on-failure destination %s failed (attempt %d)",
                    self.config.uuid,
                    self.destination.arn,
                    attempt,
                )
                if attempt < _DESTINATION_ATTEMPTS:
                    self._sleep(backoff.next_delay())
                continue
            self.counters.add(destination_sends=1, destination_records=count)
            return
        _log.error(
            "mapping %s: dropped a failure record for %d record(s): %s", self.config.uuid, count, document
        )

    def _event(self, records: Sequence[StreamRecord], window: Window | None) -> dict[str, Any]:
        event: dict[str, Any] = {"Records": [r.event for r in records]}
        if window is not None:
            event.update(
                window.event_fields(self.shard_id, self.config.event_source_arn, final=False, early=False)
            )
        return event

    # -- batches -------------------------------------------------------------------------------

    def process(self, records: list[StreamRecord], window: Window | None = None) -> None:
        """Deliver ``records`` (one shard, in order) until each is resolved.

        Raises :class:`StopRequestedError` when the engine stops first.
        """
        units: deque[_Unit] = deque([_Unit(list(records))])
        throttle = Backoff(self.settings.throttle_backoff_s, self.settings.throttle_backoff_max_s)
        retry = Backoff(self.settings.retry_backoff_s, self.settings.retry_backoff_max_s)
        while units:
            self._check_stop()
            unit = units[0]
            expired = self._expired_prefix(unit.records)
            if expired:
                gone, unit.records = unit.records[:expired], unit.records[expired:]
                self._give_up(
                    gone,
                    condition=RECORD_AGE_EXCEEDED,
                    invoke_count=unit.invokes,
                    result=None,
                    payload=None,
                    absorb_into=window,
                )
                if not unit.records:
                    units.popleft()
                continue
            event = self._event(unit.records, window)
            result = self._invoke(event, throttle)
            if result is None:
                continue
            unit.invokes += 1
            self.counters.add(batches=1)
            outcome = interpret(
                result,
                unit.records,
                report_batch_item_failures=self.config.report_batch_item_failures,
                windowed=window is not None,
            )
            if outcome.ok:
                self._succeeded(unit.records, outcome, window)
                units.popleft()
                retry.reset()
                continue
            self.counters.add(errors=1)
            failing = unit.records
            if outcome.verdict is Verdict.PARTIAL_FAILURE:
                done, failing = unit.records[: outcome.failed_from], unit.records[outcome.failed_from :]
                if done:
                    self._succeeded(done, outcome, window)
            _log.info(
                "mapping %s shard %s: batch of %d failed (%s)",
                self.config.uuid,
                self.shard_id,
                len(unit.records),
                outcome.reason,
            )
            if self.config.bisect_on_error and len(failing) > 1:
                # Splitting does not consume a retry attempt.
                half = len(failing) // 2
                units.popleft()
                units.appendleft(_Unit(failing[half:], unit.retries, unit.invokes))
                units.appendleft(_Unit(failing[:half], unit.retries, unit.invokes))
                continue
            if self._retries_exhausted(unit.retries):
                self._give_up(
                    failing,
                    condition=RETRY_ATTEMPTS_EXHAUSTED,
                    invoke_count=unit.invokes,
                    result=result,
                    payload=self._event(failing, window),
                    absorb_into=window,
                )
                units.popleft()
                continue
            unit.retries += 1
            self.counters.add(retries=1)
            self._sleep(retry.next_delay())
            # Lambda re-reads the stream for a retry.
            unit.records = self._reread(failing)

    def _reread(self, records: list[StreamRecord]) -> list[StreamRecord]:
        backoff = Backoff(self.settings.error_backoff_s, self.settings.error_backoff_max_s)
        while True:
            self._check_stop()
            try:
                return self.source.reread(self.shard_id, records, self.role_arn)
            except Exception:
                _log.exception(
                    "mapping %s shard %s: re-read for a retry failed", self.config.uuid, self.shard_id
                )
                self._sleep(backoff.next_delay())

    def _succeeded(self, records: list[StreamRecord], outcome: Outcome, window: Window | None) -> None:
        with self.commit_lock:
            if window is not None:
                window.state = outcome.state if outcome.state is not None else {}
                window.absorb(records)
            self.resolve(records)
        self.counters.add(records=len(records))
        if window is not None and state_size(window.state) > MAX_STATE_BYTES:
            # Over the 1 MB state limit: end this window early and continue it with fresh state.
            self.close_window(window, early=True)
            with self.commit_lock:
                window.state = {}
                window.first_sequence = window.last_sequence = None
                window.count = 0

    # -- windows -------------------------------------------------------------------------------

    def close_window(self, window: Window, *, early: bool = False) -> None:
        """The one final invocation of a window (no records, the last state).

        Retried until it succeeds, bounded by MaximumRetryAttempts and MaximumRecordAgeInSeconds;
        the shard does not move on meanwhile. Raises :class:`StopRequestedError` when the engine stops first.
        """
        if window.count == 0 and not early:
            # Nothing was aggregated since the window (or its early-ended part) began.
            return
        throttle = Backoff(self.settings.throttle_backoff_s, self.settings.throttle_backoff_max_s)
        retry = Backoff(self.settings.retry_backoff_s, self.settings.retry_backoff_max_s)
        retries = invokes = 0
        while True:
            self._check_stop()
            limit = self.config.maximum_record_age_s
            if limit >= 0 and window.count and self.clock.time() - window.last_arrival > limit:
                self._give_up(
                    [],
                    condition=RECORD_AGE_EXCEEDED,
                    invoke_count=invokes,
                    result=None,
                    payload=None,
                    window=window,
                )
                return
            event: dict[str, Any] = {"Records": []}
            event.update(
                window.event_fields(self.shard_id, self.config.event_source_arn, final=True, early=early)
            )
            result = self._invoke(event, throttle)
            if result is None:
                continue
            invokes += 1
            if result.ok:
                self.counters.add(window_final_invocations=1)
                return
            self.counters.add(errors=1)
            _log.info("mapping %s shard %s: final window invocation failed", self.config.uuid, self.shard_id)
            if self._retries_exhausted(retries):
                self._give_up(
                    [],
                    condition=RETRY_ATTEMPTS_EXHAUSTED,
                    invoke_count=invokes,
                    result=result,
                    payload=event,
                    window=window,
                )
                return
            retries += 1
            self.counters.add(retries=1)
            self._sleep(retry.next_delay())
