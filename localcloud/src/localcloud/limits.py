"""Kinesis shard limits on the local endpoint: a WSGI middleware in front of moto.

Per shard, Kinesis accepts 1,000 records/s and 1 MiB/s of writes (data plus partition key) and
serves 5 GetRecords calls/s and 2 MiB/s of reads. moto has no limits at all, so a producer that
would be throttled on AWS never learns to retry locally. :class:`ShardLimits` keeps a token bucket
per shard (refilled continuously, holding at most one second's worth) and answers as Kinesis does:

* PutRecords: entries over their shard's limit fail with ``ProvisionedThroughputExceededException``
  (and count in ``FailedRecordCount``); the others go to moto unchanged in one call, and the two
  are merged back in the original order.
* PutRecord over the limit: HTTP 400 ``ProvisionedThroughputExceededException``.
* GetRecords over 5 calls/s, or while the shard's read budget is spent: HTTP 400
  ``ProvisionedThroughputExceededException``. A large read may overdraw the byte budget (Kinesis
  returns up to 10 MB per call); later calls are refused until it has refilled.

The shard of a record is the open shard whose hash-key range holds MD5(partition key) (or the
ExplicitHashKey), read from moto's Kinesis backend in this process.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from localcloud.aws import ACCOUNT_ID
from localcloud.metrics.calls import (
    JsonAnswer,
    JsonCall,
    StartResponse,
    aws_error,
    call_app,
    decoded_length,
    json_answer,
    json_call,
    replace_request,
    send,
)
from localcloud.metrics.kinesis import iterator_position, record_size, stream_of
from localcloud.server import WsgiApp

MIB = 1024 * 1024
THROTTLED = "ProvisionedThroughputExceededException"
_CONTENT_TYPE = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class ShardLimitSettings:
    """Per-shard limits (Kinesis's provisioned-mode defaults)."""

    write_records_per_s: float = 1000.0
    write_bytes_per_s: float = 1.0 * MIB
    read_calls_per_s: float = 5.0
    read_bytes_per_s: float = 2.0 * MIB


class TokenBucket:
    """``rate`` tokens per second, holding at most one second's worth (``rate``)."""

    __slots__ = ("_clock", "last", "rate", "tokens")

    def __init__(self, rate: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.tokens = rate
        self._clock = clock
        self.last = clock()

    def refill(self, now: float | None = None) -> float:
        """Top up for the time elapsed; returns the tokens available (negative while overdrawn)."""
        if now is None:
            now = self._clock()
        elapsed = now - self.last
        if elapsed > 0:
            self.tokens = min(self.rate, self.tokens + elapsed * self.rate)
            self.last = now
        return self.tokens


class _ShardBuckets:
    """The write and read buckets of one shard."""

    __slots__ = ("read_bytes", "read_calls", "write_bytes", "write_records")

    def __init__(self, settings: ShardLimitSettings, clock: Callable[[], float]) -> None:
        self.write_records = TokenBucket(settings.write_records_per_s, clock)
        self.write_bytes = TokenBucket(settings.write_bytes_per_s, clock)
        self.read_calls = TokenBucket(settings.read_calls_per_s, clock)
        self.read_bytes = TokenBucket(settings.read_bytes_per_s, clock)

    def refill_writes(self, now: float) -> None:
        """Top up both write buckets (once per call: every entry of a call arrives at once)."""
        self.write_records.refill(now)
        self.write_bytes.refill(now)

    def take_write(self, size: int) -> bool:
        """Admit one record of ``size`` bytes (after :meth:`refill_writes`), or take nothing."""
        records, data = self.write_records, self.write_bytes
        if records.tokens < 1 or data.tokens < size:
            return False
        records.tokens -= 1
        data.tokens -= size
        return True

    def give_back_write(self, size: int) -> None:
        """Undo :meth:`take_write` (the call failed as a whole)."""
        self.write_records.tokens = min(self.write_records.rate, self.write_records.tokens + 1)
        self.write_bytes.tokens = min(self.write_bytes.rate, self.write_bytes.tokens + size)

    def take_read(self) -> bool:
        """Admit one GetRecords call (a call slot, and a read budget not overdrawn)."""
        if self.read_calls.refill() < 1 or self.read_bytes.refill() <= 0:
            return False
        self.read_calls.tokens -= 1
        return True


class _HashRanges:
    """The open shards of one stream, sorted by starting hash key, for a bisect per record."""

    __slots__ = ("ends", "ids", "shard_count", "starts", "stream")

    def __init__(self, stream: Any) -> None:
        shards = sorted((s for s in stream.shards.values() if s.is_open), key=lambda s: int(s.starting_hash))
        self.stream = stream
        self.shard_count = len(stream.shards)
        self.starts = [int(s.starting_hash) for s in shards]
        self.ends = [int(s.ending_hash) for s in shards]
        self.ids = [str(s.shard_id) for s in shards]

    def shard_for(self, partition_key: str, explicit_hash_key: str | None) -> str | None:
        """The open shard holding the record's hash key."""
        if len(self.ids) == 1 and not explicit_hash_key:
            return self.ids[0]  # one open shard holds every key: no need to hash
        if explicit_hash_key:
            try:
                key = int(explicit_hash_key)
            except ValueError:
                return None
        else:
            key = int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")
        index = bisect.bisect_right(self.starts, key) - 1
        if index < 0 or key > self.ends[index]:
            return None
        return self.ids[index]


class ShardLimits:
    """A WSGI middleware (``app -> app``) enforcing Kinesis's per-shard limits; see the module doc.

    ``clock`` is a monotonic clock in seconds (tests pass their own). Counters ``throttled_records``
    and ``throttled_reads`` say how often the limits bit.
    """

    def __init__(
        self,
        region: str = "us-east-1",
        settings: ShardLimitSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.region = region
        self.settings = settings or ShardLimitSettings()
        self._clock = clock
        self._buckets: dict[tuple[str, str, str], _ShardBuckets] = {}
        self._ranges: dict[tuple[str, str], _HashRanges] = {}
        # moto's Kinesis calls are already serialized by the endpoint; this lock covers direct use.
        self._lock = threading.Lock()
        self.throttled_records = 0
        self.throttled_reads = 0

    def __call__(self, app: WsgiApp) -> WsgiApp:
        """Wrap ``app``."""

        def limited(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            target = environ.get("HTTP_X_AMZ_TARGET", "")
            if not target.startswith("Kinesis_") or not target.endswith(_OPERATIONS):
                return app(environ, start_response)
            call = json_call(environ, self.region)
            if call is None:
                return app(environ, start_response)
            with self._lock:
                answer = self._handle(app, environ, call)
            if answer is None:
                return app(environ, start_response)
            return send(environ, start_response, answer)

        return limited

    # -- per operation --------------------------------------------------------------------------
    def _handle(self, app: WsgiApp, environ: dict[str, Any], call: JsonCall) -> JsonAnswer | None:
        if call.operation == "PutRecords":
            return self._put_records(app, environ, call)
        if call.operation == "PutRecord":
            return self._put_record(app, environ, call)
        if call.operation == "GetRecords":
            return self._get_records(app, environ, call)
        return None

    def _put_records(self, app: WsgiApp, environ: dict[str, Any], call: JsonCall) -> JsonAnswer | None:
        stream_name, region = stream_of(call)
        records = call.request.get("Records")
        ranges = self._ranges_for(region, stream_name)
        if ranges is None or not isinstance(records, list) or not 0 < len(records) <= 500:
            return None  # moto answers with the right error
        admitted: list[dict[str, Any]] = []
        taken: list[tuple[_ShardBuckets, int]] = []
        refused: dict[int, str] = {}
        now = self._clock()
        touched: dict[str, _ShardBuckets] = {}
        # The hot path: a few dict lookups and integer operations per entry.
        for index, record in enumerate(records):
            key = record.get("PartitionKey") if isinstance(record, dict) else None
            if not isinstance(key, str):
                self._give_back(taken)
                return None
            shard_id = ranges.shard_for(key, record.get("ExplicitHashKey"))
            if shard_id is None:
                self._give_back(taken)
                return None
            size = record_size(record)
            buckets = touched.get(shard_id)
            if buckets is None:
                buckets = touched[shard_id] = self._shard(region, stream_name, shard_id)
                buckets.refill_writes(now)
            if buckets.take_write(size):
                admitted.append(record)
                taken.append((buckets, size))
            else:
                refused[index] = shard_id
        if not refused:
            return _pass_through(app, environ, self, taken)
        self.throttled_records += len(refused)
        results: list[dict[str, Any]] = []
        failed = len(refused)
        if admitted:
            replace_request(environ, call, {**call.request, "Records": admitted})
            inner = call_app(app, environ)
            if inner.status_code != 200:
                self._give_back(taken)
                return inner
            answer = inner.json()
            accepted = iter(answer.get("Records", []))
            failed += int(answer.get("FailedRecordCount", 0))
        else:
            answer, accepted = {}, iter(())
        for index in range(len(records)):
            shard_id = refused.get(index)
            if shard_id is None:
                results.append(next(accepted, {"ErrorCode": "InternalFailure", "ErrorMessage": "lost"}))
            else:
                results.append({"ErrorCode": THROTTLED, "ErrorMessage": self._message(shard_id, stream_name)})
        merged = {key: value for key, value in answer.items() if key not in ("Records", "FailedRecordCount")}
        merged.update({"FailedRecordCount": failed, "Records": results})
        return json_answer("200 OK", merged, _CONTENT_TYPE)

    def _put_record(self, app: WsgiApp, environ: dict[str, Any], call: JsonCall) -> JsonAnswer | None:
        stream_name, region = stream_of(call)
        key = call.request.get("PartitionKey")
        ranges = self._ranges_for(region, stream_name)
        if ranges is None or not isinstance(key, str):
            return None
        shard_id = ranges.shard_for(key, call.request.get("ExplicitHashKey"))
        if shard_id is None:
            return None
        size = record_size(call.request)
        buckets = self._shard(region, stream_name, shard_id)
        buckets.refill_writes(self._clock())
        if not buckets.take_write(size):
            self.throttled_records += 1
            return aws_error(THROTTLED, self._message(shard_id, stream_name), _CONTENT_TYPE)
        return _pass_through(app, environ, self, [(buckets, size)])

    def _get_records(self, app: WsgiApp, environ: dict[str, Any], call: JsonCall) -> JsonAnswer | None:
        position = iterator_position(call)
        if position is None:
            return None  # an invalid iterator: moto explains
        stream_name, shard_id = position
        region = stream_of(call)[1]
        buckets = self._shard(region, stream_name, shard_id)
        if not buckets.take_read():
            self.throttled_reads += 1
            return aws_error(THROTTLED, self._message(shard_id, stream_name), _CONTENT_TYPE)
        answer = call_app(app, environ)
        if answer.status_code == 200:
            read = sum(decoded_length(str(r.get("Data", ""))) for r in answer.json().get("Records", []))
            buckets.read_bytes.tokens -= read
        return answer

    # -- helpers --------------------------------------------------------------------------------
    def _shard(self, region: str, stream_name: str, shard_id: str) -> _ShardBuckets:
        key = (region, stream_name, shard_id)
        buckets = self._buckets.get(key)
        if buckets is None:
            buckets = self._buckets[key] = _ShardBuckets(self.settings, self._clock)
        return buckets

    def _ranges_for(self, region: str, stream_name: str) -> _HashRanges | None:
        """The stream's hash ranges, rebuilt when moto's stream object or its shard count changes."""
        from moto.kinesis.models import kinesis_backends  # noqa: PLC0415 - moto is heavy to import

        stream = kinesis_backends[ACCOUNT_ID][region].streams.get(stream_name)
        if stream is None:
            return None
        cached = self._ranges.get((region, stream_name))
        if cached is None or cached.stream is not stream or cached.shard_count != len(stream.shards):
            cached = self._ranges[(region, stream_name)] = _HashRanges(stream)
        return cached

    @staticmethod
    def _give_back(taken: list[tuple[_ShardBuckets, int]]) -> None:
        for buckets, size in taken:
            buckets.give_back_write(size)

    @staticmethod
    def _message(shard_id: str, stream_name: str) -> str:
        return f"Rate exceeded for shard {shard_id} in stream {stream_name} under account {ACCOUNT_ID}."


_OPERATIONS = (".PutRecords", ".PutRecord", ".GetRecords")


def _pass_through(
    app: WsgiApp, environ: dict[str, Any], limits: ShardLimits, taken: list[tuple[_ShardBuckets, int]]
) -> JsonAnswer:
    answer = call_app(app, environ)
    if answer.status_code != 200:
        limits._give_back(taken)
    return answer
