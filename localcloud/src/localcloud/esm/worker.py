"""Workers: one thread per mapping (shard discovery) and one per shard (poll, batch, dispatch).

A shard worker reads its shard in order, drops records no filter matches, routes the rest to
sub-streams (ParallelizationFactor; one partition key always to the same sub-stream), cuts batches
and hands them to a :class:`~localcloud.esm.processor.BatchProcessor`. Its checkpoint advances
only past sequence numbers whose records are all resolved.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from localcloud.invocation import Invoker

from .checkpoint import CheckpointStore, ShardCheckpoint
from .config import MAX_PAYLOAD_BYTES, MappingConfig, SourceKind
from .destination import FailureDestination
from .filters import PatternError, RecordFilter
from .processor import Backoff, BatchProcessor, StopRequestedError
from .records import StreamRecord
from .sender import FunctionSender
from .settings import Clock, EngineSettings
from .sources import Position, ShardInfo, SourceGoneError, StreamSource, make_client, make_source
from .stats import ShardCounters, ShardStats
from .windows import Window, window_start

_log = logging.getLogger(__name__)

# Room left in a batch's payload for the event envelope and window fields.
_ENVELOPE_BYTES = 64 * 1024


class ShardState(Enum):
    """Lifecycle of a shard worker."""

    STARTING = "starting"
    POLLING = "polling"
    BACKING_OFF = "backing_off"
    FINISHED = "finished"
    STOPPED = "stopped"
    BROKEN = "broken"


class MappingState(Enum):
    """Lifecycle of a mapping worker."""

    STARTING = "starting"
    RUNNING = "running"
    BROKEN = "broken"
    STOPPED = "stopped"


class CompletionTracker:
    """Which read records are resolved; the checkpoint is the end of the resolved prefix."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._order: deque[int] = deque()
        self._done: set[int] = set()
        self._low: int | None = None

    def add(self, seq: int) -> None:
        """A record was read (records arrive in sequence order)."""
        with self._lock:
            self._order.append(seq)

    def resolve(self, seqs: Sequence[int]) -> None:
        """Records were delivered, filtered out or handed to the destination."""
        with self._lock:
            self._done.update(seqs)
            while self._order and self._order[0] in self._done:
                self._low = self._order.popleft()
                self._done.discard(self._low)

    def is_resolved(self, seq: int) -> bool:
        """True once the record is resolved (or was never outstanding)."""
        with self._lock:
            return seq in self._done or seq not in self._order

    def low_water(self) -> int | None:
        """Highest sequence number such that it and every record read before it are resolved."""
        with self._lock:
            return self._low

    def outstanding(self) -> int:
        """Records read but not yet resolved."""
        with self._lock:
            return len(self._order)


@dataclass
class _Lane:
    """One sub-stream of a shard: its pending records, in-flight flag and (lane 0) window."""

    pending: deque[StreamRecord] = field(default_factory=deque)
    pending_bytes: int = 0
    pending_since: float = 0.0
    busy: bool = False
    window: Window | None = None


@dataclass
class _Batch:
    records: list[StreamRecord]
    window: Window | None


@dataclass
class _CloseWindow:
    window: Window


def substream_of(key: str, lanes: int) -> int:
    """The sub-stream (0..lanes-1) of a partition key: one key always maps to the same one."""
    if lanes == 1:
        return 0
    digest = hashlib.md5(key.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:8], "big") % lanes


class ShardWorker:
    """Reads one shard and drives its batches."""

    def __init__(
        self,
        *,
        config: MappingConfig,
        shard: ShardInfo,
        from_parent: bool,
        source: StreamSource,
        sender: FunctionSender,
        destination: FailureDestination | None,
        record_filter: RecordFilter,
        store: CheckpointStore,
        settings: EngineSettings,
        clock: Clock,
        role_arn: str,
    ) -> None:
        self.config = config
        self.shard_id = shard.shard_id
        self.closed = shard.closed
        self.from_parent = from_parent
        self.source = source
        self.record_filter = record_filter
        self.store = store
        self.settings = settings
        self.clock = clock
        self.role_arn = role_arn
        self.counters = ShardCounters()
        self.state = ShardState.STARTING
        self.stopping = threading.Event()
        self.cond = threading.Condition()
        self.windowed = config.tumbling_window_s > 0
        lanes = 1 if self.windowed else config.parallelization_factor
        self.lanes = [_Lane() for _ in range(lanes)]
        self.tracker = CompletionTracker()
        self.commit_lock = threading.Lock()
        self.processor = BatchProcessor(
            config=config,
            shard_id=self.shard_id,
            source=source,
            sender=sender,
            destination=destination,
            counters=self.counters,
            settings=settings,
            clock=clock,
            stopping=self.stopping,
            role_arn=role_arn,
            resolve=self._resolved,
            commit_lock=self.commit_lock,
        )
        self.poll_interval = (
            settings.kinesis_poll_interval_s
            if config.kind is SourceKind.KINESIS
            else settings.dynamodb_poll_interval_s
        )
        # Batches run on their own threads (one per sub-stream) so that reading the shard overlaps
        # with invoking the function.
        self._pool = ThreadPoolExecutor(lanes, thread_name_prefix=f"esm-{self.shard_id}")
        self._thread = threading.Thread(target=self._run, name=f"esm-shard-{self.shard_id}", daemon=True)
        self._iterator: str | None = None
        self._last_read: int | None = None
        self._skip_before: float | None = None
        self._more = False
        self._ended = False
        self._finished = False
        self._last_arrival: float | None = None
        self._last_empty_poll = -1.0
        # When the next read is due (time.monotonic()): reads start a poll interval apart.
        self._next_poll = 0.0
        self._persisted: tuple[int | None, int] = (None, -1)
        self._window_version = 0
        self._checkpoint = ShardCheckpoint()

    # -- public --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to stop (in-flight invocations finish first)."""
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker thread."""
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """True once the closed shard was read to its end and everything in it was resolved."""
        return self._finished

    def mark_closed(self) -> None:
        """The shard was closed by resharding (from ListShards)."""
        self.closed = True

    def idle_since(self, since: float, include_windows: bool) -> bool:
        """True when a poll started after ``since`` found the tip and nothing is pending."""
        if self._finished:
            return True
        if self.state in (ShardState.BROKEN, ShardState.STOPPED):
            return True
        with self.cond:
            if any(lane.pending or lane.busy for lane in self.lanes):
                return False
            if include_windows and self.lanes[0].window is not None:
                return False
        return self._last_empty_poll >= since and self.tracker.outstanding() == 0

    def snapshot(self) -> ShardStats:
        """Current counters."""
        c = self.counters
        with self.cond:
            pending = any(lane.pending or lane.busy for lane in self.lanes)
        at_tip = not pending and not self._more
        age = 0
        if not at_tip and self._last_arrival is not None:
            age = max(0, int((self.clock.time() - self._last_arrival) * 1000))
        low = self.tracker.low_water()
        with c.lock:
            return ShardStats(
                mapping_uuid=self.config.uuid,
                function_arn=self.config.function_arn,
                event_source_arn=self.config.event_source_arn,
                shard_id=self.shard_id,
                state=self.state.value,
                iterator_age_ms=age,
                batches=c.batches,
                records=c.records,
                filtered=c.filtered,
                errors=c.errors,
                retries=c.retries,
                throttles=c.throttles,
                destination_records=c.destination_records,
                destination_sends=c.destination_sends,
                window_final_invocations=c.window_final_invocations,
                last_invoke_duration_ms=c.last_invoke_duration_ms,
                checkpoint=str(low) if low is not None else self._checkpoint.sequence,
            )

    # -- thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._restore()
            errors = Backoff(self.settings.error_backoff_s, self.settings.error_backoff_max_s)
            while not self.stopping.is_set():
                self._dispatch()
                self._persist()
                if self._drained():
                    self._finish()
                    return
                if self._room_to_read() and self._poll_due():
                    try:
                        self._poll()
                        errors.reset()
                        self.state = ShardState.POLLING
                    except SourceGoneError:
                        raise
                    except Exception:
                        _log.exception("mapping %s shard %s: read failed", self.config.uuid, self.shard_id)
                        self.state = ShardState.BACKING_OFF
                        self._iterator = None
                        self.stopping.wait(errors.next_delay())
                        continue
                self._dispatch()
                self._persist()
                self._wait()
        except StopRequestedError:
            pass
        except SourceGoneError as exc:
            _log.error("mapping %s shard %s: source is gone (%s)", self.config.uuid, self.shard_id, exc)
            self.state = ShardState.BROKEN
        except Exception:
            _log.exception("mapping %s shard %s: worker crashed", self.config.uuid, self.shard_id)
            self.state = ShardState.BROKEN
        finally:
            # Also on a crash: batch threads retrying forever must see that this shard is done.
            self.stopping.set()
            self._pool.shutdown(wait=True)
            self._persist()
            if self.state not in (ShardState.BROKEN, ShardState.FINISHED):
                self.state = ShardState.STOPPED

    def _restore(self) -> None:
        checkpoint = self.store.get(self.shard_id)
        if checkpoint is not None:
            self._checkpoint = checkpoint
            if checkpoint.window and self.windowed:
                self.lanes[0].window = Window.from_json(checkpoint.window)
            if checkpoint.finished:
                self._finished = True
                self.state = ShardState.FINISHED
                raise StopRequestedError
        if self._checkpoint.sequence is not None:
            self._last_read = int(self._checkpoint.sequence)

    def _start_position(self) -> Position:
        if self._last_read is not None:
            return Position("AFTER_SEQUENCE_NUMBER", str(self._last_read))
        cp = self._checkpoint
        if self.from_parent:
            return Position("TRIM_HORIZON")
        if self.config.starting_position == "LATEST":
            if cp.start_timestamp is not None:
                # Restarted before consuming anything: resume from when the first run started.
                if self.config.kind is SourceKind.KINESIS:
                    return Position("AT_TIMESTAMP", timestamp=cp.start_timestamp)
                self._skip_before = cp.start_timestamp
                return Position("TRIM_HORIZON")
            cp.start_timestamp = self.clock.time()
            self.store.put(self.shard_id, cp)
            return Position("LATEST")
        if self.config.starting_position == "AT_TIMESTAMP" and self.config.starting_position_timestamp:
            if self.config.kind is SourceKind.DYNAMODB:
                self._skip_before = self.config.starting_position_timestamp
            return Position("AT_TIMESTAMP", timestamp=self.config.starting_position_timestamp)
        return Position("TRIM_HORIZON")

    def _room_to_read(self) -> bool:
        return not self._ended and self.tracker.outstanding() < self.settings.read_ahead_records

    def _poll_due(self) -> bool:
        """A read is due: records remain behind the last read, or a poll interval has passed since
        the last read started.

        AWS reads each shard at a base rate (Kinesis once a second, DynamoDB Streams four times a
        second) and reads again at once only while records remain. The interval runs from the start
        of one read to the start of the next, so a read slowed down by a busy machine does not
        stretch the cadence; and a batch finishing is no reason to read early, which would split
        the stream into more, smaller invocations than AWS makes.
        """
        return self._more or time.monotonic() >= self._next_poll

    def _poll(self) -> None:
        started = time.monotonic()
        self._next_poll = started + self.poll_interval
        # Snapshot before reading: a shard closed before this read cannot gain records after it.
        closed_before = self.closed
        if self._iterator is None:
            self._iterator = self.source.open_iterator(self.shard_id, self._start_position())
        # Read as much as the read-ahead allows: each GetRecords call is costly (an HTTP round trip,
        # and moto scans the shard from its start).
        room = self.settings.read_ahead_records - self.tracker.outstanding()
        limit = max(1, min(self.source.max_read, room))
        result = self.source.read(self._iterator, limit, self.shard_id, self.role_arn)
        self._iterator = result.next_iterator
        fresh = [r for r in result.records if self._last_read is None or r.seq > self._last_read]
        if not fresh:
            if result.millis_behind and result.next_iterator is not None:
                # Kinesis may answer empty while records lie further on: keep reading.
                self._more = True
                return
            self._more = False
            self._last_empty_poll = started
            if result.next_iterator is None or closed_before:
                self._ended = True
            return
        self._last_read = fresh[-1].seq
        self._last_arrival = fresh[-1].arrival
        self._more = len(result.records) >= limit or bool(result.millis_behind)
        skipped: list[int] = []
        now = self.clock.time()
        with self.cond:
            for record in fresh:
                self.tracker.add(record.seq)
                if self._skip_before is not None and record.arrival < self._skip_before:
                    skipped.append(record.seq)
                    continue
                if not self._matches(record):
                    skipped.append(record.seq)
                    self.counters.add(filtered=1)
                    continue
                lane = self.lanes[substream_of(record.key, len(self.lanes))]
                if not lane.pending:
                    lane.pending_since = now
                lane.pending.append(record)
                lane.pending_bytes += record.size
        if skipped:
            self.tracker.resolve(skipped)
        if result.next_iterator is None:
            self._ended = True

    def _matches(self, record: StreamRecord) -> bool:
        if not self.record_filter:
            return True
        if self.config.kind is SourceKind.KINESIS:
            return self.record_filter.matches_kinesis(record.event["kinesis"]["data"])
        return self.record_filter.matches_dynamodb(record.event)

    def _resolved(self, records: Sequence[StreamRecord]) -> None:
        self.tracker.resolve([r.seq for r in records])

    # -- batching ------------------------------------------------------------------------------

    def _batch_ready(self, lane: _Lane, now: float) -> bool:
        if len(lane.pending) >= self.config.batch_size:
            return True
        if lane.pending_bytes >= MAX_PAYLOAD_BYTES - _ENVELOPE_BYTES:
            return True
        if self._ended or self.config.maximum_batching_window_s <= 0:
            return True
        if self._window_ends_in_pending(lane):
            return True
        return now - lane.pending_since >= self.config.maximum_batching_window_s

    def _window_ends_in_pending(self, lane: _Lane) -> bool:
        """True when records of a later tumbling window wait behind the next batch's.

        A batch never spans two windows, so the batch cut at the window's end is complete: waiting
        out MaximumBatchingWindowInSeconds could add nothing to it, and would only hold back the
        window's final invocation (and so its results) by up to that long. AWS does not document
        this case; ending the gathering at the window's end is the choice that keeps windows
        closing when their records have been read.
        """
        if not self.windowed or not lane.pending:
            return False
        last = lane.pending[-1].arrival
        if lane.window is not None:
            return not lane.window.contains(last)
        size = self.config.tumbling_window_s
        return window_start(last, size) != window_start(lane.pending[0].arrival, size)

    def _take_batch(self, lane: _Lane) -> list[StreamRecord]:
        batch: list[StreamRecord] = []
        size = _ENVELOPE_BYTES
        window = lane.window
        first = lane.pending[0]
        first_window = window_start(first.arrival, self.config.tumbling_window_s) if self.windowed else 0
        while lane.pending and len(batch) < self.config.batch_size:
            record = lane.pending[0]
            if batch and size + record.size > MAX_PAYLOAD_BYTES:
                break
            if self.windowed:
                # A batch never spans two windows.
                if window is not None and not window.contains(record.arrival):
                    break
                if (
                    window is None
                    and window_start(record.arrival, self.config.tumbling_window_s) != first_window
                ):
                    break
            batch.append(lane.pending.popleft())
            lane.pending_bytes -= record.size
            size += record.size
        if lane.pending:
            lane.pending_since = self.clock.time()
        return batch

    def _next_job(self, lane: _Lane, now: float) -> _Batch | _CloseWindow | None:
        window = lane.window
        if window is not None:
            if lane.pending:
                if not window.contains(lane.pending[0].arrival):
                    return _CloseWindow(window)
            elif self._ended or (
                not self._more
                and self._last_empty_poll >= 0
                and now >= window.end + self.settings.window_idle_wait_s
            ):
                return _CloseWindow(window)
        if not lane.pending or not self._batch_ready(lane, now):
            return None
        if self.windowed and lane.window is None:
            lane.window = Window(
                window_start(lane.pending[0].arrival, self.config.tumbling_window_s),
                self.config.tumbling_window_s,
            )
        return _Batch(self._take_batch(lane), lane.window)

    def _dispatch(self) -> None:
        # Hand every idle sub-stream its next job; a busy one gets its next when it finishes.
        progressed = True
        while progressed and not self.stopping.is_set():
            progressed = False
            now = self.clock.time()
            for lane in self.lanes:
                with self.cond:
                    if lane.busy:
                        continue
                    job = self._next_job(lane, now)
                    if job is None:
                        continue
                    lane.busy = True
                progressed = True
                self._pool.submit(self._execute, lane, job)

    def _execute(self, lane: _Lane, job: _Batch | _CloseWindow | None) -> None:
        # The sub-stream's thread takes its next job itself, so batches keep flowing while the
        # reader thread is busy with a GetRecords call.
        while job is not None:
            self._run_job(lane, job)
            with self.cond:
                self._window_version += 1
                job = None if self.stopping.is_set() else self._next_job(lane, self.clock.time())
                if job is None:
                    lane.busy = False
                self.cond.notify_all()

    def _run_job(self, lane: _Lane, job: _Batch | _CloseWindow) -> None:
        try:
            if isinstance(job, _Batch):
                self.processor.process(job.records, job.window)
            else:
                self.processor.close_window(job.window, early=False)
                with self.cond:
                    lane.window = None
        except StopRequestedError:
            pass
        except Exception:
            _log.exception("mapping %s shard %s: batch processing failed", self.config.uuid, self.shard_id)
            if isinstance(job, _Batch):
                # Put unresolved records back so they are tried again, in order.
                unresolved = [r for r in job.records if not self.tracker.is_resolved(r.seq)]
                with self.cond:
                    for record in reversed(unresolved):
                        lane.pending.appendleft(record)
                        lane.pending_bytes += record.size
            self.stopping.wait(self.settings.error_backoff_s)

    def _drained(self) -> bool:
        if not self._ended:
            return False
        with self.cond:
            return all(
                not lane.pending and not lane.busy and lane.window is None for lane in self.lanes
            ) and (self.tracker.outstanding() == 0)

    def _finish(self) -> None:
        self._finished = True
        self.state = ShardState.FINISHED
        self._checkpoint.finished = True
        self._persist(force=True)
        _log.info("mapping %s: shard %s read to its end", self.config.uuid, self.shard_id)

    def _persist(self, force: bool = False) -> None:
        with self.commit_lock:
            low = self.tracker.low_water()
            key = (low, self._window_version)
            if not force and key == self._persisted:
                return
            self._persisted = key
            if low is not None:
                self._checkpoint.sequence = str(low)
            window = self.lanes[0].window if self.windowed else None
            self._checkpoint.window = window.to_json() if window is not None else None
        self.store.put(self.shard_id, self._checkpoint)

    def _wait(self) -> None:
        if self._more and self._room_to_read():
            return
        now = self.clock.time()
        timeout = self.poll_interval
        if self._room_to_read():
            # Until the next read is due; a finished batch wakes the thread earlier (to dispatch
            # and checkpoint), without reading before it is due.
            timeout = min(timeout, max(0.0, self._next_poll - time.monotonic()))
        with self.cond:
            for lane in self.lanes:
                if lane.pending and not lane.busy and self.config.maximum_batching_window_s > 0:
                    due = lane.pending_since + self.config.maximum_batching_window_s - now
                    timeout = min(timeout, max(0.0, due))
                if lane.window is not None and not lane.busy:
                    due = lane.window.end + self.settings.window_idle_wait_s - now
                    timeout = min(timeout, max(0.005, due))
            if self.stopping.is_set():
                return
            self.cond.wait(timeout)


class MappingWorker:
    """Runs one mapping: discovers shards and keeps a worker per readable shard."""

    def __init__(
        self,
        config: MappingConfig,
        *,
        endpoint_url: str,
        invoker: Invoker,
        state_dir: Path | None,
        settings: EngineSettings,
        clock: Clock,
        store: CheckpointStore | None = None,
    ) -> None:
        self.config = config
        self.endpoint_url = endpoint_url
        self.invoker = invoker
        self.settings = settings
        self.clock = clock
        self.state = MappingState.STARTING
        self.store = store or CheckpointStore(state_dir, config.uuid, config.event_source_arn)
        self.source = make_source(config, endpoint_url)
        self.sender = FunctionSender(invoker, config.function_arn)
        self.destination = (
            FailureDestination(config.on_failure_destination, endpoint_url, config.uuid)
            if config.on_failure_destination
            else None
        )
        self.record_filter: RecordFilter | None = None
        self.shards: dict[str, ShardWorker] = {}
        self.role_arn: str | None = None
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._last_refresh = -1.0
        self._pending_shards = 0
        self._thread = threading.Thread(target=self._run, name=f"esm-{config.uuid[:8]}", daemon=True)
        if self.windowed_parallel():
            _log.warning(
                "mapping %s: ParallelizationFactor %d with a tumbling window; using 1 per shard",
                config.uuid,
                config.parallelization_factor,
            )

    def windowed_parallel(self) -> bool:
        """True when a tumbling window forces the parallelization factor down to 1."""
        return self.config.tumbling_window_s > 0 and self.config.parallelization_factor > 1

    def start(self) -> None:
        """Start the discovery thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop every shard worker and persist their checkpoints."""
        self.stopping.set()
        with self._lock:
            workers = list(self.shards.values())
        for worker in workers:
            worker.stop()
        self._thread.join(timeout)
        for worker in workers:
            worker.join(timeout)
        self.state = MappingState.STOPPED

    def idle_since(self, since: float, include_windows: bool) -> bool:
        """True when every shard is idle and the shard list was refreshed after ``since``."""
        if self.state is MappingState.BROKEN:
            return True
        if self._last_refresh < since or self._pending_shards:
            return False
        with self._lock:
            workers = list(self.shards.values())
        return all(w.idle_since(since, include_windows) for w in workers)

    def stats(self) -> list[ShardStats]:
        """One entry per shard worker."""
        with self._lock:
            workers = list(self.shards.values())
        return [w.snapshot() for w in workers]

    def _run(self) -> None:
        backoff = Backoff(self.settings.error_backoff_s, self.settings.error_backoff_max_s)
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self._refresh()
                backoff.reset()
                self._last_refresh = started
                delay = self.settings.shard_refresh_interval_s
            except PatternError as exc:
                _log.error("mapping %s: invalid FilterCriteria (%s); not processing", self.config.uuid, exc)
                self.state = MappingState.BROKEN
                return
            except SourceGoneError as exc:
                _log.error("mapping %s: event source unavailable (%s)", self.config.uuid, exc)
                self.state = MappingState.BROKEN
                delay = backoff.next_delay()
            except Exception:
                _log.exception("mapping %s: shard discovery failed", self.config.uuid)
                delay = backoff.next_delay()
            self.stopping.wait(delay)

    def _role(self) -> str:
        if self.role_arn is None:
            client = make_client("lambda", self.endpoint_url, self.config.function_arn.split(":")[3])
            configuration = client.get_function_configuration(FunctionName=self.config.function_arn)
            self.role_arn = str(configuration.get("Role", ""))
        return self.role_arn

    def _refresh(self) -> None:
        if self.record_filter is None:
            self.record_filter = RecordFilter(self.config.filter_patterns)
        role = self._role()
        shards = self.source.list_shards()
        listed = {s.shard_id: s for s in shards}
        self.state = MappingState.RUNNING
        pending = 0
        for shard in shards:
            if self.stopping.is_set():
                return
            with self._lock:
                worker = self.shards.get(shard.shard_id)
            if worker is not None and worker.state is ShardState.BROKEN and not worker.alive:
                # The shard's reads failed for good (e.g. the stream was gone); try it afresh.
                with self._lock:
                    del self.shards[shard.shard_id]
                worker = None
            if worker is not None:
                if shard.closed:
                    worker.mark_closed()
                continue
            if self.store.is_finished(shard.shard_id):
                continue
            parents = [p for p in shard.parents if p in listed or self.store.known(p)]
            if not all(self._parent_done(p) for p in parents):
                # Read parents to their end first, to keep per-key order across a reshard.
                pending += 1
                continue
            worker = ShardWorker(
                config=self.config,
                shard=shard,
                from_parent=bool(parents),
                source=self.source,
                sender=self.sender,
                destination=self.destination,
                record_filter=self.record_filter,
                store=self.store,
                settings=self.settings,
                clock=self.clock,
                role_arn=role,
            )
            with self._lock:
                self.shards[shard.shard_id] = worker
            worker.start()
        self._pending_shards = pending

    def _parent_done(self, shard_id: str) -> bool:
        with self._lock:
            worker = self.shards.get(shard_id)
        if worker is not None:
            return worker.finished
        return self.store.is_finished(shard_id)
