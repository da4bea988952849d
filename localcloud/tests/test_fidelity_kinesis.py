"""Kinesis event source mapping scenarios recorded on AWS, replayed against localcloud.

Each test rebuilds one scenario of LocalStack's test_lambda_integration_kinesis.snapshot.json (a
recording of real AWS) against a moto server and localcloud's mapping engine, normalises what
localcloud produced the way the snapshot normalised AWS's answers, and scores it with
``scoreboard.compare``. Timings are the engine's shortened ones (esm_support.FAST); the record-age
scenarios use 2 s where AWS's minimum MaximumRecordAgeInSeconds is 60 s (moto does not enforce it).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from esm_support import Aws, EngineFactory, RecordingInvoker, aws, invoker, make_engine, moto_endpoint
from fidelity import replay
from fidelity.normalise import Normaliser, error_facts, response_facts
from fidelity.scoreboard import compare

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

K = "kinesis::TestKinesisSource::"


def _create(aws: Aws, function: str, source: str, **params: Any) -> dict[str, Any]:
    return dict(
        aws.client("lambda").create_event_source_mapping(
            FunctionName=function, EventSourceArn=source, **params
        )
    )


def _sorted_records(calls: list[Any]) -> list[dict[str, Any]]:
    records = [r for call in calls for r in call.records]
    return sorted(records, key=lambda r: r["kinesis"]["partitionKey"])


def test_create_kinesis_event_source_mapping(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a LATEST mapping on a fresh stream, read to its tip
    norm = Normaliser()
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    norm.add("resource", name), norm.add("resource", fn), norm.add("resource", role.rsplit("/", 1)[1])
    invoker.register(fn, lambda event: None)
    created = _create(aws, fn, arn, StartingPosition="LATEST")
    engine = make_engine()
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    # When ten records arrive
    seqs = aws.put_many(name, [(f"test_{i}", b"hello") for i in range(10)])
    for seq in seqs:
        norm.add("sequence-number", seq)
    # Then the function receives them, shaped as on AWS
    replay.wait_for(lambda: len(invoker.delivered(fn)) >= 10, timeout=replay.TIMEOUT)
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "kinesis_records": {"Records": norm(_sorted_records(invoker.calls_for(fn)))},
    }
    compare(K + "test_create_kinesis_event_source_mapping", observed)


def test_disable_kinesis_event_source_mapping(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    norm.add("resource", name), norm.add("resource", fn), norm.add("resource", role.rsplit("/", 1)[1])
    invoker.register(fn, lambda event: None)
    created = _create(aws, fn, arn, StartingPosition="LATEST", BatchSize=10)
    engine = make_engine()
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    for seq in aws.put_many(name, [("test", json.dumps({"record_id": i}).encode()) for i in range(10)]):
        norm.add("sequence-number", seq)
    replay.wait_calls(invoker, fn, 1)
    # When the mapping is disabled, records put afterwards are not delivered
    aws.client("lambda").update_event_source_mapping(UUID=created["UUID"], Enabled=False)
    engine.sync()
    aws.put_many(name, [("test", json.dumps({"record_id": i}).encode()) for i in range(10, 20)])
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "invocation_events": [norm(call.event) for call in invoker.calls_for(fn)],
    }
    compare(K + "test_disable_kinesis_event_source_mapping", observed)


def _failing(event: dict[str, Any]) -> Any:
    raise RuntimeError("recorded scenario: the function fails")


def test_on_failure_destination_sqs(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    norm = Normaliser()
    qname, url, qarn = replay.queue(aws)
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    for value in (qname, name, fn, role.rsplit("/", 1)[1]):
        norm.add("resource", value)
    invoker.register(fn, _failing)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": qarn}},
    )
    norm(response_facts(created))
    norm.add("start-sequence-number", aws.put(name, {"input": "hello"}, key="custom"))
    make_engine()
    body = replay.receive_one(aws, url)
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "sqs_body": norm(body),
    }
    compare(K + "test_kinesis_event_source_mapping_with_on_failure_destination_config", observed)


def test_event_filtering_json_pattern(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn1, fn2 = replay.function(aws, role), replay.function(aws, role)
    for value in (name, fn1, fn2):
        norm.add("resource", value)
    invoker.register(fn1, lambda event: None)
    invoker.register(fn2, lambda event: None)
    common: dict[str, Any] = {
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": 1,
        "MaximumBatchingWindowInSeconds": 1,
        "MaximumRetryAttempts": 1,
    }
    pattern = {"Filters": [{"Pattern": json.dumps({"data": {"event_type": ["function_1"]}})}]}
    first = _create(aws, fn1, arn, FilterCriteria=pattern, **common)
    pattern2 = {"Filters": [{"Pattern": json.dumps({"data": {"event_type": ["function_2"]}})}]}
    second = _create(aws, fn2, arn, FilterCriteria=pattern2, **common)
    aws.put(name, {"event_type": "function_1", "message": "foo"})
    aws.put(name, {"event_type": "function_2", "message": "bar"})
    engine = make_engine()
    replay.wait_calls(invoker, fn1, 1)
    replay.wait_calls(invoker, fn2, 1)
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    payload = [json.loads(base64.b64decode(r["kinesis"]["data"])) for r in invoker.delivered(fn1)]

    def with_parsed_patterns(response: dict[str, Any]) -> dict[str, Any]:
        # The recording parsed each Pattern (a JSON string in the API) before storing it.
        out = response_facts(response)
        out["FilterCriteria"] = {
            "Filters": [{"Pattern": json.loads(f["Pattern"])} for f in out["FilterCriteria"]["Filters"]]
        }
        return out

    observed = {
        "create_event_source_mapping_response": norm(with_parsed_patterns(first)),
        "create_event_source_mapping_2_response": norm(with_parsed_patterns(second)),
        "kinesis-record-lambda-payload": json.dumps(payload),
    }
    compare("kinesis::TestKinesisEventFiltering::test_kinesis_event_filtering_json_pattern", observed)


def test_duplicate_event_source_mappings(aws: Aws) -> None:
    norm = Normaliser()
    name, arn = replay.stream(aws)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", name), norm.add("resource", fn)
    created = _create(aws, fn, arn, StartingPosition="LATEST")
    with pytest.raises(aws.client("lambda").exceptions.ClientError) as error:
        _create(aws, fn, arn, StartingPosition="LATEST")
    observed = {"create": norm(response_facts(created)), "error": norm(error_facts(error.value))}
    compare(K + "test_duplicate_event_source_mappings", observed)


def test_multiple_functions_on_one_stream(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn_a, fn_b = replay.function(aws, role), replay.function(aws, role)
    for value in (name, fn_a, fn_b, role.rsplit("/", 1)[1]):
        norm.add("resource", value)
    invoker.register(fn_a, lambda event: None)
    invoker.register(fn_b, lambda event: None)
    created_a = _create(aws, fn_a, arn, StartingPosition="TRIM_HORIZON")
    created_b = _create(aws, fn_b, arn, StartingPosition="TRIM_HORIZON")
    norm(response_facts(created_a)), norm(response_facts(created_b))
    norm.add("sequence-number", aws.put(name, b"hello", key="test_1"))
    make_engine()
    replay.wait_calls(invoker, fn_a, 1)
    replay.wait_calls(invoker, fn_b, 1)
    observed = {
        "create_event_source_mapping_response-a": norm(response_facts(created_a)),
        "create_event_source_mapping_response-b": norm(response_facts(created_b)),
        "kinesis_records-a": {"Records": norm(_sorted_records(invoker.calls_for(fn_a)))},
        "kinesis_records-b": {"Records": norm(_sorted_records(invoker.calls_for(fn_b)))},
    }
    compare(
        K + "test_create_kinesis_event_source_mapping_multiple_lambdas_single_kinesis_event_stream", observed
    )


def test_on_failure_destination_sns(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    norm = Normaliser()
    topic = aws.client("sns").create_topic(Name=f"topic-{time.monotonic_ns()}")["TopicArn"]
    _, url, qarn = replay.queue(aws)
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    name, arn = replay.stream(aws)
    fn = replay.function(aws, replay.role(aws))
    for value in (topic.rsplit(":", 1)[1], name, fn):
        norm.add("resource", value)
    invoker.register(fn, _failing)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": topic}},
    )
    norm(response_facts(created))
    norm.add("start-sequence-number", aws.put(name, {"input": "hello"}, key="custom"))
    make_engine()
    envelope = replay.receive_one(aws, url)
    message = {
        "Message": json.loads(envelope["Message"]),
        "SignatureVersion": envelope.get("SignatureVersion"),
        "TopicArn": envelope.get("TopicArn"),
        "Type": envelope.get("Type"),
    }
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "failure_sns_message": norm(message),
    }
    compare(K + "test_kinesis_event_source_mapping_with_sns_on_failure_destination_config", observed)


def test_report_batch_item_failures(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    norm = Normaliser()
    qname, url, qarn = replay.queue(aws)
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    for value in (qname, name, fn, role.rsplit("/", 1)[1]):
        norm.add("resource", value)

    def handler(event: dict[str, Any]) -> Any:
        failed = [
            r["kinesis"]["sequenceNumber"]
            for r in event["Records"]
            if json.loads(base64.b64decode(r["kinesis"]["data"]))["should_fail"]
        ]
        return {"batchItemFailures": [{"itemIdentifier": s} for s in failed]}

    invoker.register(fn, handler)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=3,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=3,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": qarn}},
    )
    norm(response_facts(created))
    items = [(f"test_{i}", json.dumps({"should_fail": i == 5}).encode()) for i in range(6)]
    for seq in aws.put_many(name, items):
        norm.add("sequence-number", seq)
    make_engine()
    body = replay.receive_one(aws, url)
    records = [r for call in invoker.calls_for(fn) for r in call.records]
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "sqs_body": norm(body),
        "kinesis_records": {"Records": norm(records)},
    }
    compare(K + "test_kinesis_report_batch_item_failures", observed)


SUCCESS_RESPONSES: dict[str, Any] = {
    "empty_string_success": "",
    "empty_list_success": [],
    "null_success": None,
    "empty_dict_success": {},
    "empty_batch_item_failure_success": {"batchItemFailures": []},
    "null_batch_item_failure_success": {"batchItemFailures": None},
}


@pytest.mark.parametrize("case", list(SUCCESS_RESPONSES))
def test_report_batch_item_success_scenarios(
    case: str, aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    for value in (name, fn, role.rsplit("/", 1)[1]):
        norm.add("resource", value)
    invoker.register(fn, lambda event: SUCCESS_RESPONSES[case])
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=2,
    )
    norm(response_facts(created))
    norm.add("sequence-number", aws.put(name, b"hello", key="test"))
    engine = make_engine()
    replay.wait_calls(invoker, fn, 1)
    # Idle means the record was resolved: a retry would have shown up as a second invocation.
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "kinesis_events": [norm(call.event) for call in invoker.calls_for(fn)],
    }
    compare(K + f"test_kinesis_report_batch_item_success_scenarios[{case}]", observed)


@pytest.mark.parametrize("case", list(replay.FAILURE_RESPONSES))
def test_report_batch_item_failure_scenarios(
    case: str, aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    qname, url, qarn = replay.queue(aws)
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    for value in (qname, name, fn, role.rsplit("/", 1)[1]):
        norm.add("resource", value)
    response = replay.FAILURE_RESPONSES[case]
    invoker.register(fn, response if callable(response) else (lambda event: response))
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": qarn}},
    )
    norm(response_facts(created))
    norm.add("sequence-number", aws.put(name, b"hello", key="test"))
    make_engine()
    body = replay.receive_one(aws, url)
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "sqs_body": norm(body),
        "kinesis_events": [norm(call.event) for call in invoker.calls_for(fn)],
    }
    compare(K + f"test_kinesis_report_batch_item_failure_scenarios[{case}]", observed)


def test_on_failure_destination_s3(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    norm = Normaliser()
    bucket = f"bucket-{time.monotonic_ns()}"
    aws.client("s3").create_bucket(Bucket=bucket)
    name, arn = replay.stream(aws)
    role = replay.role(aws)
    fn = replay.function(aws, role)
    for value in (bucket, name, fn, role.rsplit("/", 1)[1]):
        norm.add("resource", value)
    # The recording replaced every shard id by one token.
    norm.literal("shardId-000000000000", "<kinesis-shard-id>")
    invoker.register(fn, _failing)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}},
    )
    norm(response_facts(created))
    norm.add(
        "sequence-number", aws.put(name, {"input": "hello", "value": "world", "raise_error": 1}, key="custom")
    )
    make_engine()
    key, body = replay.one_object(aws, bucket)
    # As the recording test checks: the key starts with the mapping, the shard and the time.
    stamp = body["timestamp"][:19].replace(":", ".")
    day = body["timestamp"][:10].replace("-", "/")
    assert key.startswith(f"aws/lambda/{created['UUID']}/shardId-000000000000/{day}/{stamp}"), key
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "record_body": norm(body),
    }
    compare(K + "test_kinesis_event_source_mapping_with_s3_on_failure_destination", observed)


def test_mapping_on_missing_stream(aws: Aws) -> None:
    fn = replay.function(aws, replay.role(aws))
    # The recording kept the (random) stream name verbatim; we use the same name.
    missing = "arn:aws:kinesis:us-east-1:123456789012:stream/test-foobar-81ded7e8"
    with pytest.raises(aws.client("lambda").exceptions.ClientError) as error:
        _create(aws, fn, missing, StartingPosition="LATEST")
    compare(
        K + "test_esm_with_not_existing_kinesis_stream", {"error": Normaliser()(error_facts(error.value))}
    )


# AWS's smallest MaximumRecordAgeInSeconds is 60; the recording used 60, we use 2.
RECORD_AGE_S = 2


@pytest.mark.parametrize(
    ("case", "delay", "retries"),
    [("expire-while-retrying", 0, -1), ("expire-before-ingestion", RECORD_AGE_S + 1, 0)],
)
def test_maximum_record_age_exceeded(
    case: str, delay: float, retries: int, aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    qname, url, qarn = replay.queue(aws)
    name, arn = replay.stream(aws)
    for value in (qname, name):
        norm.add("resource", value)
    norm.add("start-sequence-number", aws.put(name, b"stream-data", key="test"))
    # Optionally let the record expire before the mapping exists.
    time.sleep(delay)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    invoker.register(fn, _failing)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRecordAgeInSeconds=RECORD_AGE_S,
        MaximumRetryAttempts=retries,
        DestinationConfig={"OnFailure": {"Destination": qarn}},
    )
    norm(response_facts(created))
    make_engine()
    body = replay.receive_one(aws, url)
    compare(K + f"test_kinesis_maximum_record_age_exceeded[{case}]", {"record_age_exceeded_body": norm(body)})
