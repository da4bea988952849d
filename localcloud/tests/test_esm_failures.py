"""Failure semantics: ReportBatchItemFailures, retries, bisect, record age, throttles, destinations."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from esm_support import (
    ACCOUNT,
    FAST,
    REGION,
    Aws,
    EngineFactory,
    RecordingInvoker,
    ThrottledError,
    aws,
    data_of,
    invoker,
    make_engine,
    moto_endpoint,
    wait_for,
)
from localcloud.esm import EngineSettings

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _setup(aws: Aws, records: int, **mapping: Any) -> tuple[str, str, str, list[str], str, str]:
    """A function, a stream holding ``records`` records {"n": i}, a DLQ and a mapping."""
    name, fn_arn, _ = aws.function()
    stream, stream_arn = aws.stream()
    seqs = aws.put_many(stream, [(f"k{i}", {"n": i}) for i in range(records)])
    dlq_url, dlq_arn = aws.queue()
    mapping.setdefault("DestinationConfig", {"OnFailure": {"Destination": dlq_arn}})
    aws.mapping(name, stream_arn, **mapping)
    return name, fn_arn, stream, seqs, stream_arn, dlq_url


def _numbers(call: Any) -> list[int]:
    return [data_of(r)["n"] for r in call.records]


def test_poison_record_with_report_batch_item_failures_retries_from_lowest_failure_then_dead_letters(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a batch of 10 whose record n=5 always fails, reported as a batch item failure
    name, fn_arn, stream, seqs, stream_arn, dlq_url = _setup(
        aws, 10, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"], MaximumRetryAttempts=2
    )

    def handler(event: dict[str, Any]) -> Any:
        failed = [r["kinesis"]["sequenceNumber"] for r in event["Records"] if data_of(r)["n"] in (5, 7)]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}

    invoker.register(name, handler)
    # When the engine runs
    engine = make_engine()
    assert engine.wait_until_idle(10)
    # Then only records from the lowest failed one are retried, MaximumRetryAttempts times
    calls = invoker.calls_for(name)
    assert [_numbers(c) for c in calls] == [list(range(10)), list(range(5, 10)), list(range(5, 10))]
    # And the destination receives exactly the documented record for the records still failing
    [failure] = aws.drain_queue(dlq_url, 1)
    assert set(failure) == {"requestContext", "responseContext", "version", "timestamp", "KinesisBatchInfo"}
    assert failure["requestContext"]["functionArn"] == fn_arn
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    last = calls[-1].result
    assert last is not None and failure["requestContext"]["requestId"] == last.request_id
    assert failure["responseContext"]["statusCode"] == 200
    assert failure["responseContext"]["executedVersion"] == "$LATEST"
    assert failure["version"] == "1.0"
    assert ISO_MILLIS.match(failure["timestamp"])
    info = failure["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000"
    assert info["startSequenceNumber"] == seqs[5]
    assert info["endSequenceNumber"] == seqs[9]
    assert info["batchSize"] == 5
    assert info["streamArn"] == stream_arn
    assert ISO_MILLIS.match(info["approximateArrivalOfFirstRecord"])
    assert ISO_MILLIS.match(info["approximateArrivalOfLastRecord"])
    # And the checkpoint moved past the batch: a new record is delivered next
    aws.put(stream, {"n": 10})
    assert engine.wait_until_idle(10)
    assert _numbers(invoker.calls_for(name)[-1]) == [10]
    [stats] = engine.stats()
    assert stats.retries == 2
    assert stats.destination_sends == 1
    assert stats.destination_records == 5
    assert stats.checkpoint == str(int(seqs[9]) + 1)
    assert ACCOUNT in fn_arn and REGION in fn_arn


@pytest.mark.parametrize(
    "bad",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"ItemIdentifier": "1"}]},
        {"batchItemFailures": [{"itemIdentifier": "999999"}]},
        {"batchItemFailures": "1"},
        "not an object",
    ],
    ids=["empty", "null", "wrong-key", "unknown", "not-a-list", "not-an-object"],
)
def test_bad_item_identifier_fails_the_whole_batch(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory, bad: Any
) -> None:
    # Given a function whose first response names a bad itemIdentifier
    name, *_ = _setup(aws, 4, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    responses = [bad]
    invoker.register(name, lambda event: responses.pop() if responses else None)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    # Then the whole batch is retried
    calls = invoker.calls_for(name)
    assert [_numbers(c) for c in calls] == [[0, 1, 2, 3], [0, 1, 2, 3]]


@pytest.mark.parametrize(
    "response",
    [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}],
    ids=["null", "empty-object", "empty-list", "null-list"],
)
def test_empty_or_null_responses_are_full_success(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory, response: Any
) -> None:
    name, *_ = _setup(aws, 3, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    invoker.register(name, lambda event: response)
    assert make_engine().wait_until_idle(10)
    assert [_numbers(c) for c in invoker.calls_for(name)] == [[0, 1, 2]]


def test_batch_item_failures_are_ignored_unless_enabled(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = _setup(aws, 3, BatchSize=10)
    invoker.register(
        name,
        lambda event: {
            "batchItemFailures": [{"itemIdentifier": event["Records"][0]["kinesis"]["sequenceNumber"]}]
        },
    )
    assert make_engine().wait_until_idle(10)
    assert [_numbers(c) for c in invoker.calls_for(name)] == [[0, 1, 2]]


def test_function_error_retries_whole_batch_then_dead_letters_it(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a function that always raises, one retry allowed
    name, _, _, seqs, _, dlq_url = _setup(aws, 4, BatchSize=10, MaximumRetryAttempts=1)

    def handler(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    invoker.register(name, handler)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    # Then the whole batch is invoked twice and dead-lettered with functionError
    assert [_numbers(c) for c in invoker.calls_for(name)] == [[0, 1, 2, 3]] * 2
    [failure] = aws.drain_queue(dlq_url, 1)
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = failure["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seqs[0],
        seqs[3],
        4,
    )


def test_poison_record_blocks_the_shard_until_retries_run_out(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a poison record followed later by good records, infinite retries
    name, _, stream, *_ = _setup(aws, 1, BatchSize=10)
    attempts = {"n": 0}

    def handler(event: dict[str, Any]) -> Any:
        if any(data_of(r)["n"] == 0 for r in event["Records"]):
            attempts["n"] += 1
            raise RuntimeError("poison")

    invoker.register(name, handler)
    make_engine()
    assert wait_for(lambda: attempts["n"] >= 5)
    aws.put(stream, {"n": 1})
    time.sleep(0.3)
    # Then the record behind the poison one is never delivered on its own
    assert all(_numbers(c)[0] == 0 for c in invoker.calls_for(name))


def test_bisect_isolates_the_poison_record(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given 8 records, n=5 always raises, bisect on, no retries
    name, _, _, seqs, _, dlq_url = _setup(
        aws, 8, BatchSize=10, BisectBatchOnFunctionError=True, MaximumRetryAttempts=0
    )

    def handler(event: dict[str, Any]) -> Any:
        if any(data_of(r)["n"] == 5 for r in event["Records"]):
            raise RuntimeError("poison")

    invoker.register(name, handler)
    assert make_engine().wait_until_idle(10)
    # Then the batch is split in halves (splitting consumes no retries) until the poison record is alone
    calls = [_numbers(c) for c in invoker.calls_for(name)]
    assert calls == [list(range(8)), [0, 1, 2, 3], [4, 5, 6, 7], [4, 5], [4], [5], [6, 7]]
    # And only the poison record goes to the destination
    [failure] = aws.drain_queue(dlq_url, 1)
    info = failure["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seqs[5],
        seqs[5],
        1,
    )
    delivered = sorted(data_of(r)["n"] for r in invoker.delivered(name))
    assert delivered == [0, 1, 2, 3, 4, 6, 7]


def test_without_bisect_the_whole_batch_is_dead_lettered(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, _, _, _, _, dlq_url = _setup(aws, 8, BatchSize=10, MaximumRetryAttempts=0)

    def handler(event: dict[str, Any]) -> Any:
        if any(data_of(r)["n"] == 5 for r in event["Records"]):
            raise RuntimeError("poison")

    invoker.register(name, handler)
    assert make_engine().wait_until_idle(10)
    assert [_numbers(c) for c in invoker.calls_for(name)] == [list(range(8))]
    [failure] = aws.drain_queue(dlq_url, 1)
    assert failure["KinesisBatchInfo"]["batchSize"] == 8


def test_bisect_with_partial_failures_splits_the_still_failing_records(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a transient failure of n=2 reported as a batch item failure, bisect on
    name, *_ = _setup(
        aws,
        6,
        BatchSize=10,
        BisectBatchOnFunctionError=True,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=3,
    )
    failures = {"left": 1}

    def handler(event: dict[str, Any]) -> Any:
        for record in event["Records"]:
            if data_of(record)["n"] == 2 and failures["left"]:
                failures["left"] -= 1
                return {"batchItemFailures": [{"itemIdentifier": record["kinesis"]["sequenceNumber"]}]}
        return None

    invoker.register(name, handler)
    assert make_engine().wait_until_idle(10)
    calls = [_numbers(c) for c in invoker.calls_for(name)]
    # Records before the failure are done; the rest [2..5] is split in two halves
    assert calls == [[0, 1, 2, 3, 4, 5], [2, 3], [4, 5]]


def test_record_older_than_maximum_record_age_goes_to_destination(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a failing function and MaximumRecordAgeInSeconds=60, with a clock we can move
    name, fn_arn, _, seqs, stream_arn, dlq_url = _setup(aws, 3, BatchSize=10, MaximumRecordAgeInSeconds=60)

    class ShiftedClock:
        offset = 0.0

        def time(self) -> float:
            return time.time() + self.offset

    clock = ShiftedClock()

    def handler(event: dict[str, Any]) -> Any:
        clock.offset = 120.0  # the records are two minutes old by the next attempt
        raise RuntimeError("fails")

    invoker.register(name, handler)
    engine = make_engine(start=False)
    engine.clock = clock
    engine.start()
    assert engine.wait_until_idle(10)
    # Then the expired records are skipped to the destination with RecordAgeExceeded (no responseContext)
    assert len(invoker.calls_for(name)) == 1
    [failure] = aws.drain_queue(dlq_url, 1)
    assert set(failure) == {"requestContext", "version", "timestamp", "KinesisBatchInfo"}
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failure["requestContext"]["functionArn"] == fn_arn
    info = failure["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        seqs[0],
        seqs[2],
        3,
    )
    assert info["streamArn"] == stream_arn


def test_throttles_are_retried_without_consuming_retry_attempts(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given MaximumRetryAttempts=1, three throttles, then one function error, then success
    name, _, _, _, _, dlq_url = _setup(aws, 2, BatchSize=10, MaximumRetryAttempts=1)
    script = ["throttle", "throttle", "throttle", "error"]

    def handler(event: dict[str, Any]) -> Any:
        step = script.pop(0) if script else "ok"
        if step == "throttle":
            raise ThrottledError
        if step == "error":
            raise RuntimeError("transient")
        return None

    invoker.register(name, handler)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    # Then the batch is delivered and nothing is dead-lettered
    assert [_numbers(c) for c in invoker.calls_for(name)] == [[0, 1], [0, 1]]
    assert invoker.delivered(name)
    assert aws.drain_queue(dlq_url, 1, timeout=0.3) == []
    [stats] = engine.stats()
    assert (stats.throttles, stats.retries, stats.errors, stats.destination_sends) == (3, 1, 1, 0)


def test_sns_on_failure_destination(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    # Given an SNS topic (subscribed by a queue so the test can read it) as on-failure destination
    sns = aws.client("sns")
    topic = sns.create_topic(Name="esm-failures")["TopicArn"]
    url, queue_arn = aws.queue()
    sns.subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"}
    )
    name, *_ = _setup(
        aws, 2, BatchSize=10, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": topic}}
    )

    def handler(event: dict[str, Any]) -> Any:
        raise RuntimeError("nope")

    invoker.register(name, handler)
    assert make_engine().wait_until_idle(10)
    [failure] = aws.drain_queue(url, 1)
    if "Message" in failure and "KinesisBatchInfo" not in failure:
        failure = json.loads(failure["Message"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["KinesisBatchInfo"]["batchSize"] == 2


def test_unused_settings_import_keeps_fast_profile() -> None:
    assert isinstance(FAST, EngineSettings)


def test_s3_on_failure_destination_gets_the_record_and_the_payload(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    s3 = aws.client("s3")
    bucket = "esm-failures"
    s3.create_bucket(Bucket=bucket)
    name, _, _, seqs, _, _ = _setup(
        aws,
        2,
        BatchSize=10,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}},
    )

    def handler(event: dict[str, Any]) -> Any:
        raise RuntimeError("nope")

    invoker.register(name, handler)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    [obj] = s3.list_objects_v2(Bucket=bucket)["Contents"]
    mapping_uuid = engine.stats()[0].mapping_uuid
    assert obj["Key"].startswith(f"aws/lambda/{mapping_uuid}/shardId-000000000000/")
    document = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert document["KinesisBatchInfo"]["startSequenceNumber"] == seqs[0]
    assert [r["kinesis"]["sequenceNumber"] for r in document["payload"]["Records"]] == seqs
