"""KinesisProducer against a stub Kinesis client: batching limits, retries, deadlines, counters."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from producers import (
    MAX_RECORD_BYTES,
    MAX_REQUEST_BYTES,
    FailedRecord,
    InvalidPartitionKeyError,
    KinesisProducer,
    ProducerClosedError,
    RecordTooLargeError,
    RetryPolicy,
    split_batches,
)

PTEE = "ProvisionedThroughputExceededException"

# Decides the fate of one entry: return None (accepted) or an error code.
EntryRule = Callable[[int, dict[str, Any]], str | None]


class StubKinesis:
    """Records every PutRecords call; fails entries or whole calls as told."""

    def __init__(self, entry_rule: EntryRule | None = None, call_errors: list[Exception] | None = None):
        self.entry_rule = entry_rule
        self.call_errors = list(call_errors or [])
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def put_records(self, *, Records: list[dict[str, Any]], StreamName: str | None = None, **_: Any):  # noqa: N803 - boto3 names
        with self._lock:
            call_number = len(self.calls)
            self.calls.append(list(Records))
            if call_number >= 1000:
                # A producer that never gives up must fail the test, not hang it.
                raise client_error("StubGaveUp", 400)
            if self.call_errors:
                raise self.call_errors.pop(0)
        results = []
        failed = 0
        for record in Records:
            code = self.entry_rule(call_number, record) if self.entry_rule else None
            if code:
                failed += 1
                results.append({"ErrorCode": code, "ErrorMessage": f"{code} for test"})
            else:
                results.append({"SequenceNumber": "1", "ShardId": "shardId-000000000000"})
                with self._lock:
                    self.accepted.append(record)
        return {"FailedRecordCount": failed, "Records": results}


class FakeTime:
    """A clock that only moves when the producer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} (test)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        "PutRecords",
    )


def make_producer(stub: StubKinesis, fake: FakeTime | None = None, **kwargs: Any) -> KinesisProducer:
    fake = fake or FakeTime()
    kwargs.setdefault("linger_seconds", None)
    kwargs.setdefault("rng", random.Random(1))
    return KinesisProducer("races", client=stub, clock=fake.clock, sleep=fake.sleep, **kwargs)


def payload(i: int) -> bytes:
    return b'{"racerId":%d}' % i


# -- batching limits ----------------------------------------------------------------------------


def test_batches_hold_at_most_500_records():
    # Given a producer and 1,234 small records
    stub = StubKinesis()
    with make_producer(stub, max_in_flight=1) as producer:
        for i in range(1234):
            producer.put(payload(i), partition_key=7)
    # Then they go out in calls of at most 500 records, none lost or duplicated
    assert sorted(len(call) for call in stub.calls) == [234, 500, 500]
    assert sorted(r["Data"] for r in stub.accepted) == sorted(payload(i) for i in range(1234))


def test_batches_stay_within_5_mib_including_partition_keys():
    # Given records of ~1,000,000 bytes: five fit in 5 MiB, six do not
    stub = StubKinesis()
    big = b"x" * 1_000_000
    with make_producer(stub, max_in_flight=1) as producer:
        for i in range(12):
            producer.put(big + str(i).encode(), partition_key="race-1")
    sizes = [sum(len(r["Data"]) + len(r["PartitionKey"]) for r in call) for call in stub.calls]
    assert all(size <= MAX_REQUEST_BYTES for size in sizes)
    assert sorted(len(call) for call in stub.calls) == [2, 5, 5]
    assert len(stub.accepted) == 12


def test_split_batches_respects_both_limits_and_order():
    items = list(range(23))
    batches = list(split_batches(items, lambda i: 10 if i % 2 else 40, max_records=5, max_bytes=100))
    assert [i for batch in batches for i in batch] == items
    assert all(len(b) <= 5 and sum(10 if i % 2 else 40 for i in b) <= 100 for b in batches)


def test_record_over_1_mib_is_rejected_before_sending():
    stub = StubKinesis()
    key = "5400802"
    with make_producer(stub) as producer:
        # Exactly at the limit (data + partition key) is fine ...
        producer.put(b"a" * (MAX_RECORD_BYTES - len(key)), key)
        # ... one byte more is a clear error, and nothing is queued for it
        with pytest.raises(RecordTooLargeError, match="1048577 bytes"):
            producer.put(b"a" * (MAX_RECORD_BYTES - len(key) + 1), key)
    assert [len(r["Data"]) for r in stub.accepted] == [MAX_RECORD_BYTES - len(key)]


def test_partition_key_is_validated_and_ints_become_strings():
    stub = StubKinesis()
    with make_producer(stub) as producer:
        with pytest.raises(InvalidPartitionKeyError):
            producer.put(b"{}", "")
        with pytest.raises(InvalidPartitionKeyError):
            producer.put(b"{}", "k" * 257)
        producer.put("{}", 5400802)
    assert stub.accepted == [{"Data": b"{}", "PartitionKey": "5400802"}]


# -- retries --------------------------------------------------------------------------------------


def test_only_failed_entries_are_retried():
    # Given Kinesis throttles every third entry of the first call only
    def rule(call_number: int, record: dict[str, Any]) -> str | None:
        index = int(record["Data"][11:-1])
        if call_number == 0 and index % 3 == 0:
            return PTEE if index % 2 else "InternalFailure"
        return None

    stub = StubKinesis(rule)
    fake = FakeTime()
    with make_producer(stub, fake, max_in_flight=1) as producer:
        for i in range(30):
            producer.put(payload(i), "1")
    # Then the second call carries exactly the failed entries, and everything arrives once
    assert len(stub.calls) == 2
    assert sorted(r["Data"] for r in stub.calls[1]) == sorted(payload(i) for i in range(0, 30, 3))
    assert sorted(r["Data"] for r in stub.accepted) == sorted(payload(i) for i in range(30))
    stats = producer.stats()
    assert (stats.sent, stats.retried, stats.failed, stats.requests) == (30, 10, 0, 2)
    assert producer.last_result is not None and producer.last_result.ok
    assert len(fake.sleeps) == 1


@pytest.mark.parametrize(
    "error",
    [
        client_error("ProvisionedThroughputExceededException", 400),
        client_error("ThrottlingException", 400),
        client_error("InternalFailure", 500),
        client_error("SomethingNew", 503),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ],
    ids=["ptee", "throttling", "internal", "5xx", "connection"],
)
def test_whole_call_throttling_and_5xx_are_retried(error: Exception):
    stub = StubKinesis(call_errors=[error, error])
    with make_producer(stub) as producer:
        for i in range(10):
            producer.put(payload(i), "1")
    assert len(stub.calls) == 3
    assert stub.calls[0] == stub.calls[1] == stub.calls[2]
    assert len(stub.accepted) == 10
    assert producer.stats().retried == 20


def test_non_retryable_call_error_fails_records_without_retrying():
    stub = StubKinesis(call_errors=[client_error("ResourceNotFoundException", 400)])
    producer = make_producer(stub)
    for i in range(4):
        producer.put(payload(i), "9")
    result = producer.close()
    assert len(stub.calls) == 1
    assert [f.data for f in result.failed] == [payload(i) for i in range(4)]
    assert result.failures_by_code() == {"ResourceNotFoundException": 4}
    assert {f.partition_key for f in result.failed} == {"9"}


def test_entries_past_their_deadline_are_returned_as_failed():
    # Given Kinesis throttles forever and records may retry for 2 s
    stub = StubKinesis(lambda _call, _record: PTEE)
    fake = FakeTime()
    policy = RetryPolicy(base_delay=0.1, max_delay=0.5, record_ttl=2.0)
    producer = make_producer(stub, fake, retry_policy=policy)
    for i in range(5):
        producer.put(payload(i), "3")
    started = fake.now
    result = producer.close()
    # Then every record comes back failed with the last error, none dropped, none sent
    assert sorted(f.data for f in result.failed) == [payload(i) for i in range(5)]
    assert all(f.error_code == PTEE and f.attempts == len(stub.calls) for f in result.failed)
    assert len(stub.calls) > 2
    # And no retry was started after the deadline
    assert fake.now - started < 2.0
    stats = producer.stats()
    assert (stats.sent, stats.failed) == (0, 5)
    assert stats.retried == 5 * (len(stub.calls) - 1)


def test_max_attempts_bounds_retries():
    stub = StubKinesis(lambda _call, _record: "InternalFailure")
    producer = make_producer(stub, retry_policy=RetryPolicy(max_attempts=3))
    producer.put(b"{}", "1")
    result = producer.close()
    assert len(stub.calls) == 3
    assert [(f.error_code, f.attempts) for f in result.failed] == [("InternalFailure", 3)]


def test_non_retryable_entry_error_is_not_retried():
    stub = StubKinesis(lambda _call, record: "KMSAccessDeniedException" if record["Data"] == b"bad" else None)
    producer = make_producer(stub)
    producer.put(b"bad", "1")
    producer.put(b"good", "1")
    result = producer.close()
    assert len(stub.calls) == 1
    assert [(f.data, f.error_code, f.attempts) for f in result.failed] == [
        (b"bad", "KMSAccessDeniedException", 1)
    ]


def test_backoff_is_exponential_with_full_jitter():
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(3)
    for retry_number, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (12, 1.0)]:
        delays = [policy.backoff(retry_number, rng) for _ in range(300)]
        assert all(0.0 <= d <= cap for d in delays)
        # Full jitter: spread over the whole range, not clustered at the cap
        assert min(delays) < cap * 0.1 and max(delays) > cap * 0.9


def test_retry_sleeps_follow_the_policy():
    stub = StubKinesis(lambda call, _record: PTEE if call < 4 else None)
    fake = FakeTime()
    with make_producer(stub, fake, retry_policy=RetryPolicy(base_delay=0.2, max_delay=10)) as producer:
        producer.put(b"{}", "1")
    assert len(fake.sleeps) == 4
    assert all(0 <= s <= 0.2 * 2**i for i, s in enumerate(fake.sleeps))


def test_on_failure_callback_receives_each_failed_record():
    stub = StubKinesis(lambda _call, _record: "AccessDeniedException")
    received: list[FailedRecord] = []
    producer = make_producer(stub, on_failure=received.append)
    for i in range(3):
        producer.put(payload(i), "1")
    result = producer.close()
    assert sorted(f.data for f in received) == [payload(i) for i in range(3)]
    assert result.failed == ()  # delivered once: to the callback, not also in the result


# -- lifecycle, counters, concurrency -------------------------------------------------------------


def test_nothing_is_sent_until_flush_without_linger_and_close_flushes():
    stub = StubKinesis()
    producer = make_producer(stub)
    producer.put(b"a", "1")
    assert stub.calls == []
    producer.close()
    assert [r["Data"] for r in stub.accepted] == [b"a"]
    with pytest.raises(ProducerClosedError):
        producer.put(b"b", "1")
    assert producer.close().ok  # idempotent


def test_linger_sends_a_partial_batch_without_flush():
    stub = StubKinesis()
    producer = KinesisProducer("races", client=stub, linger_seconds=0.02)
    try:
        producer.put(b"a", "1")
        deadline = time.monotonic() + 5
        while not stub.accepted and time.monotonic() < deadline:
            time.sleep(0.005)
        assert [r["Data"] for r in stub.accepted] == [b"a"]
    finally:
        producer.close()


def test_counters_track_sent_bytes_requests():
    stub = StubKinesis(lambda call, record: PTEE if call == 0 and record["Data"] == b"abc" else None)
    with make_producer(stub, max_in_flight=1) as producer:
        producer.put(b"abc", "12")
        producer.put(b"defgh", "345")
    stats = producer.stats()
    assert stats.sent == 2
    assert stats.bytes == (3 + 2) + (5 + 3)
    assert stats.requests == 2
    assert stats.retried == 1
    assert stats.failed == 0
    assert stats.kinesis_records == 2


def test_batches_are_sent_concurrently():
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    class SlowStub(StubKinesis):
        def put_records(self, **kwargs: Any):
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.05)
            with lock:
                in_flight -= 1
            return super().put_records(**kwargs)

    stub = SlowStub()
    with KinesisProducer("races", client=stub, max_in_flight=4, max_batch_records=10) as producer:
        for i in range(80):
            producer.put(payload(i), "1")
    assert 2 <= peak <= 4
    assert len(stub.accepted) == 80


def test_put_from_many_threads_counts_every_record_once():
    stub = StubKinesis()
    with KinesisProducer("races", client=stub, max_batch_records=37, linger_seconds=0.01) as producer:

        def worker(offset: int) -> None:
            for i in range(500):
                producer.put(payload(offset + i), str(offset))

        threads = [threading.Thread(target=worker, args=(n * 1000,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert producer.stats().sent == 4000
    assert len({r["Data"] for r in stub.accepted}) == len(stub.accepted) == 4000


def test_stream_arn_is_passed_instead_of_name():
    seen: list[dict[str, Any]] = []

    class ArnStub:
        def put_records(self, **kwargs: Any):
            seen.append(kwargs)
            return {"Records": [{"SequenceNumber": "1"} for _ in kwargs["Records"]]}

    arn = "arn:aws:kinesis:us-east-1:123456789012:stream/races"
    with KinesisProducer(stream_arn=arn, client=ArnStub(), linger_seconds=None) as producer:
        producer.put(b"{}", "1")
    assert seen[0]["StreamARN"] == arn and "StreamName" not in seen[0]
    with pytest.raises(ValueError, match="exactly one"):
        KinesisProducer("races", stream_arn=arn, client=ArnStub())
