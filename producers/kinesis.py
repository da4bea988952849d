"""KinesisProducer: batched, concurrent, retrying PutRecords with optional KPL aggregation.

Delivery is at-least-once: a record is either accepted by Kinesis or handed back to the caller as a
:class:`~producers.records.FailedRecord`, never dropped. A transport error after the request reached
Kinesis (e.g. a read timeout) is retried and may duplicate records; Alleycat's consumers count each
(raceId, racerId, second) once, so duplicates are harmless where silence would not be.

Ordering: with ``max_in_flight > 1`` batches are sent concurrently and retried entries go out after
newer ones, so order across batches is not preserved (as with the KPL). Aggregation keeps the order
of a race's messages inside each aggregated record.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from producers.aggregation import AggregatedRecord, PartitionAggregator
from producers.batching import BatchBuilder
from producers.client import PutRecordsClient, build_kinesis_client
from producers.errors import InvalidPartitionKeyError, ProducerClosedError, RecordTooLargeError
from producers.limits import (
    KPL_AGGREGATION_MAX_BYTES,
    MAX_PARTITION_KEY_CHARS,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_REQUEST,
    MAX_REQUEST_BYTES,
)
from producers.records import FailedRecord, ProducerStats, PutResult
from producers.retry import RETRYABLE_ENTRY_CODES, RetryPolicy, is_retryable_call_error

logger = logging.getLogger(__name__)

FailureCallback = Callable[[FailedRecord], None]


@dataclass(slots=True)
class _Entry:
    """One Kinesis record on its way: plain (``payloads is None``) or aggregated."""

    partition_key: str
    data: bytes
    size: int
    deadline: float
    payloads: tuple[bytes, ...] | None = None
    attempts: int = 0

    @property
    def user_count(self) -> int:
        return 1 if self.payloads is None else len(self.payloads)

    def user_payloads(self) -> tuple[bytes, ...]:
        return (self.data,) if self.payloads is None else self.payloads


@dataclass(slots=True)
class _Failure:
    entry: _Entry
    code: str
    message: str
    retryable: bool


class _Counters:
    """Mutable counters behind a lock; :meth:`snapshot` gives a consistent view."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = self.retried = self.failed = self.bytes = self.requests = self.kinesis_records = 0

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self, name, getattr(self, name) + delta)

    def snapshot(self) -> ProducerStats:
        with self._lock:
            return ProducerStats(
                sent=self.sent,
                retried=self.retried,
                failed=self.failed,
                bytes=self.bytes,
                requests=self.requests,
                kinesis_records=self.kinesis_records,
            )


def normalize_partition_key(partition_key: str | int) -> str:
    """Alleycat uses the raceId as partition key; accept it as int or str, validate its length."""
    key = str(partition_key)
    if not 1 <= len(key) <= MAX_PARTITION_KEY_CHARS:
        raise InvalidPartitionKeyError(
            f"partition key must be 1..{MAX_PARTITION_KEY_CHARS} characters, got {len(key)}"
        )
    return key


class KinesisProducer:
    """Sends records to one Kinesis data stream in PutRecords batches from a small thread pool.

    ``put`` only buffers (and blocks when ``max_in_flight * 2`` batches are already queued, so a
    stalled stream slows the caller down instead of filling memory). Batches leave when full
    (500 records or 5 MiB), when their oldest record has waited ``linger_seconds``, on ``flush`` and
    on ``close``. Failed entries — and only those — are retried with exponential backoff and full
    jitter until each record's deadline (``retry_policy.record_ttl`` after its ``put``).

    Records that cannot be delivered go to ``on_failure`` (called on a worker thread) if given,
    otherwise they are kept and returned by the next :meth:`flush`, :meth:`close` or
    :meth:`take_failures`. After a ``with`` block, read them from :attr:`last_result`.

    Args:
        stream_name: the stream's name (or give ``stream_arn``).
        stream_arn: the stream's ARN, instead of its name.
        client: a boto3 Kinesis client (or any object with ``put_records``); built from
            ``endpoint_url``/``region`` when omitted, with botocore's own retries off.
        aggregate: pack user records into KPL aggregated records, one partition key per record.
        compress: with ``aggregate``, each aggregated record holds one zlib-compressed batch of
            JSON lines (the Alleycat compressed batch, see :mod:`producers.aggregation`): ~10x
            more messages per shard-second for consumers that read records through
            :func:`~producers.aggregation.read_messages`, as Alleycat's do.
        aggregation_max_bytes: size bound of one aggregated record (KPL's default 51,200 bytes);
            compressed, the bound of the uncompressed lines in one record.
        max_in_flight: concurrent PutRecords calls.
        linger_seconds: how long a buffered record may wait for its batch to fill; ``None`` sends
            partial batches only on ``flush``/``close``. Measured with ``clock``.
        retry_policy: backoff, attempts and deadline (which errors are retryable is fixed: producers.retry).
        on_failure: receives each record that could not be delivered.
        max_batch_records, max_batch_bytes: lower the PutRecords limits (tests, small shards).
        clock, sleep, rng: injectable time and randomness, for deterministic tests.
    """

    def __init__(
        self,
        stream_name: str | None = None,
        *,
        stream_arn: str | None = None,
        client: PutRecordsClient | None = None,
        endpoint_url: str | None = None,
        region: str | None = None,
        aggregate: bool = False,
        compress: bool = False,
        aggregation_max_bytes: int = KPL_AGGREGATION_MAX_BYTES,
        max_in_flight: int = 4,
        linger_seconds: float | None = 0.1,
        retry_policy: RetryPolicy | None = None,
        on_failure: FailureCallback | None = None,
        max_batch_records: int = MAX_RECORDS_PER_REQUEST,
        max_batch_bytes: int = MAX_REQUEST_BYTES,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if (stream_name is None) == (stream_arn is None):
            raise ValueError("give exactly one of stream_name and stream_arn")
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if linger_seconds is not None and linger_seconds <= 0:
            raise ValueError("linger_seconds must be > 0 or None")
        if compress and not aggregate:
            raise ValueError("compress needs aggregate=True (batches travel inside aggregated records)")
        self._target: dict[str, str] = (
            {"StreamName": stream_name} if stream_name is not None else {"StreamARN": str(stream_arn)}
        )
        self._client: PutRecordsClient = client or build_kinesis_client(
            endpoint_url=endpoint_url, region=region, max_pool_connections=max_in_flight + 2
        )
        self._policy = retry_policy or RetryPolicy()
        self._on_failure = on_failure
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._linger = linger_seconds

        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._batch: BatchBuilder[_Entry] = BatchBuilder(max_batch_records, max_batch_bytes)
        self._aggregator = (
            PartitionAggregator(aggregation_max_bytes, compress=compress) if aggregate else None
        )
        self._buffered_since: float | None = None
        self._outstanding = 0  # batches handed out by the buffer and not finished yet
        self._failures: list[FailedRecord] = []
        self._closed = False
        self._counters = _Counters()
        self.last_result: PutResult | None = None
        """The result of :meth:`close` (set also when a ``with`` block closes the producer)."""

        # A bounded queue of batches: put() blocks rather than buffering without limit.
        self._slots = threading.Semaphore(max_in_flight * 2)
        self._executor = ThreadPoolExecutor(max_in_flight, thread_name_prefix="kinesis-put")
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        if linger_seconds is not None:
            self._flusher = threading.Thread(target=self._linger_loop, name="kinesis-linger", daemon=True)
            self._flusher.start()

    @property
    def aggregate(self) -> bool:
        """Whether user records are KPL-aggregated."""
        return self._aggregator is not None

    # -- public API ---------------------------------------------------------------------------

    def put(self, data: bytes | str, partition_key: str | int) -> None:
        """Queue one record. ``str`` data is UTF-8 encoded.

        Raises:
            RecordTooLargeError: data plus partition key exceed 1 MiB (nothing is queued).
            InvalidPartitionKeyError: the key is empty or longer than 256 characters.
            ProducerClosedError: the producer is closed.
        """
        key = normalize_partition_key(partition_key)
        payload = data.encode() if isinstance(data, str) else bytes(data)
        size = len(payload) + len(key.encode())
        if size > MAX_RECORD_BYTES:
            raise RecordTooLargeError(key, size, MAX_RECORD_BYTES)
        now = self._clock()
        with self._lock:
            if self._closed:
                raise ProducerClosedError("the producer is closed")
            if self._buffered_since is None:
                self._buffered_since = now
            ready = self._buffer_locked(key, payload, size, now)
            self._outstanding += len(ready)
        for batch in ready:
            self._submit(batch)

    def flush(self) -> PutResult:
        """Send everything buffered, wait until every record is delivered or failed, return failures."""
        with self._lock:
            ready = self._drain_locked()
            self._outstanding += len(ready)
        for batch in ready:
            self._submit(batch)
        with self._idle:
            while self._outstanding:
                self._idle.wait()
        return PutResult(tuple(self.take_failures()))

    def take_failures(self) -> list[FailedRecord]:
        """Return and forget the failed records collected so far (without waiting)."""
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def stats(self) -> ProducerStats:
        """A thread-safe snapshot of the counters."""
        return self._counters.snapshot()

    def close(self) -> PutResult:
        """Flush, stop the worker threads and return the failures not yet taken. Idempotent."""
        with self._lock:
            already_closed, self._closed = self._closed, True
        if already_closed:
            return PutResult(tuple(self.take_failures()))
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        result = self.flush()
        self._executor.shutdown(wait=True)
        self.last_result = result
        return result

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        result = self.close()
        if result.failed:
            logger.warning(
                "%d records could not be delivered (%s); see KinesisProducer.last_result",
                len(result.failed),
                result.failures_by_code(),
            )

    # -- buffering ----------------------------------------------------------------------------

    def _buffer_locked(self, key: str, payload: bytes, size: int, now: float) -> list[list[_Entry]]:
        ttl = self._policy.record_ttl
        if self._aggregator is None:
            return self._batch.add(_Entry(key, payload, size, now + ttl), size)
        finished, accepted = self._aggregator.add(key, payload, now)
        ready = [batch for agg in finished for batch in self._add_aggregated_locked(agg)]
        if not accepted:
            # Too big to aggregate: it goes plain, right after its key's last aggregated record.
            ready += self._batch.add(_Entry(key, payload, size, now + ttl), size)
        return ready

    def _add_aggregated_locked(self, agg: AggregatedRecord) -> list[list[_Entry]]:
        size = len(agg.data) + len(agg.partition_key.encode())
        entry = _Entry(
            agg.partition_key, agg.data, size, agg.opened_at + self._policy.record_ttl, agg.user_records
        )
        return self._batch.add(entry, size)

    def _drain_locked(self) -> list[list[_Entry]]:
        ready: list[list[_Entry]] = []
        if self._aggregator is not None:
            for agg in self._aggregator.drain():
                ready += self._add_aggregated_locked(agg)
        last = self._batch.drain()
        if last:
            ready.append(last)
        self._buffered_since = None
        return ready

    def _linger_loop(self) -> None:
        assert self._linger is not None
        # Wake a few times per linger period so a record waits at most ~1.25 x linger.
        while not self._stop.wait(self._linger / 4):
            with self._lock:
                since = self._buffered_since
                if since is None or self._clock() - since < self._linger:
                    continue
                ready = self._drain_locked()
                self._outstanding += len(ready)
            for batch in ready:
                self._submit(batch)

    def _submit(self, batch: list[_Entry]) -> None:
        self._slots.acquire()
        try:
            self._executor.submit(self._run_batch, batch)
        except BaseException:
            self._slots.release()
            self._finish_batch()
            raise

    def _finish_batch(self) -> None:
        with self._idle:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.notify_all()

    # -- sending ------------------------------------------------------------------------------

    def _run_batch(self, batch: list[_Entry]) -> None:
        """Send one batch, retrying its failed entries until each is delivered or failed."""
        pending = batch
        retry_number = 0
        try:
            while pending:
                for entry in pending:
                    entry.attempts += 1
                failures = self._put_records(pending)
                if not failures:
                    return
                retry_number += 1
                with self._rng_lock:
                    delay = self._policy.backoff(retry_number, self._rng)
                resume_at = self._clock() + delay
                max_attempts = self._policy.max_attempts
                retry: list[_Entry] = []
                dead: list[_Failure] = []
                for failure in failures:
                    entry = failure.entry
                    if (
                        failure.retryable
                        and resume_at < entry.deadline
                        and (max_attempts is None or entry.attempts < max_attempts)
                    ):
                        retry.append(entry)
                    else:
                        dead.append(failure)
                pending = retry
                self._fail(dead)
                if retry:
                    self._counters.add(retried=sum(e.user_count for e in retry))
                    self._sleep(delay)
        except BaseException as exc:
            # A bug (or a broken injected clock/sleep) must still not lose what was pending.
            logger.exception("unexpected error while sending a batch")
            self._fail([_Failure(e, type(exc).__name__, str(exc), False) for e in pending])
        finally:
            self._slots.release()
            self._finish_batch()

    def _put_records(self, entries: list[_Entry]) -> list[_Failure]:
        """One PutRecords call; return the entries that failed and whether each may be retried."""
        records = [{"Data": e.data, "PartitionKey": e.partition_key} for e in entries]
        self._counters.add(requests=1)
        try:
            response: Any = self._client.put_records(Records=records, **self._target)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            message = str(error.get("Message", exc))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            retryable = is_retryable_call_error(code, status)
            return [_Failure(e, code, message, retryable) for e in entries]
        except (BotocoreConnectionError, HTTPClientError) as exc:
            # Connection refused/reset, timeouts: transient by nature.
            return [_Failure(e, type(exc).__name__, str(exc), True) for e in entries]
        except Exception as exc:
            # Parameter validation, credentials, ...: retrying cannot help.
            return [_Failure(e, type(exc).__name__, str(exc), False) for e in entries]

        results = response.get("Records") or []
        failures: list[_Failure] = []
        ok_records = ok_users = ok_bytes = 0
        retryable_codes = RETRYABLE_ENTRY_CODES
        for index, entry in enumerate(entries):
            if index >= len(results):
                # Kinesis always answers one result per entry; if not, assume the worst, retry.
                failures.append(_Failure(entry, "InternalFailure", "no result for this entry", True))
                continue
            code = results[index].get("ErrorCode")
            if code:
                message = str(results[index].get("ErrorMessage", ""))
                failures.append(_Failure(entry, str(code), message, code in retryable_codes))
            else:
                ok_records += 1
                ok_users += entry.user_count
                ok_bytes += entry.size
        self._counters.add(sent=ok_users, kinesis_records=ok_records, bytes=ok_bytes)
        return failures

    def _fail(self, failures: list[_Failure]) -> None:
        if not failures:
            return
        records = [
            FailedRecord(f.entry.partition_key, payload, f.code, f.message, f.entry.attempts)
            for f in failures
            for payload in f.entry.user_payloads()
        ]
        self._counters.add(failed=len(records))
        if self._on_failure is None:
            with self._lock:
                self._failures.extend(records)
            return
        for record in records:
            try:
                self._on_failure(record)
            except Exception:
                # The callback's bug must not lose the remaining records' reports.
                logger.exception("on_failure callback raised; keeping the record for take_failures()")
                with self._lock:
                    self._failures.append(record)
