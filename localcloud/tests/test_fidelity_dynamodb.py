"""DynamoDB Streams mapping scenarios recorded on AWS (test_lambda_integration_dynamodbstreams),
replayed against localcloud with the engine's shortened timings and scored like the Kinesis ones.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from esm_support import Aws, EngineFactory, RecordingInvoker, aws, invoker, make_engine, moto_endpoint
from fidelity import replay
from fidelity.normalise import Normaliser, error_facts, response_facts
from fidelity.scoreboard import compare

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

D = "dynamodbstreams::TestDynamoDBEventSourceMapping::"


def _table(aws: Aws, norm: Normaliser, *, label_first: bool = False) -> tuple[str, str]:
    """A table with a NEW_IMAGE stream, its name and stream label registered as the recording did."""
    table, arn = aws.table(view="NEW_IMAGE")
    label = arn.rsplit("/", 1)[1]
    # uuid:1 was the recorded table's TableId, which these scenarios do not compare.
    norm.add("uuid", "recorded-table-id")
    for value in (label, table) if label_first else (table, label):
        norm.add("resource", value)
    return table, arn


def _create(aws: Aws, function: str, source: str, **params: Any) -> dict[str, Any]:
    client = aws.client("lambda")
    return dict(client.create_event_source_mapping(FunctionName=function, EventSourceArn=source, **params))


def test_duplicate_event_source_mappings(aws: Aws) -> None:
    norm = Normaliser()
    _, arn = _table(aws, norm)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    params: dict[str, Any] = {"StartingPosition": "TRIM_HORIZON", "MaximumBatchingWindowInSeconds": 1}
    created = _create(aws, fn, arn, MaximumRetryAttempts=1, **params)
    with pytest.raises(aws.client("lambda").exceptions.ClientError) as error:
        _create(aws, fn, arn, **params)
    observed = {"create": norm(response_facts(created)), "error": norm(error_facts(error.value))}
    compare(D + "test_duplicate_event_source_mappings", observed)


# (the filter pattern sent, the recorded case id); the recording named a case by its pattern.
INVALID_PATTERNS = [
    ("single-string", "single-string"),
    ('[{"eventName": ["INSERT"=123}]', '[{"eventName": ["INSERT"=123}]'),
]


@pytest.mark.parametrize(("pattern", "case"), INVALID_PATTERNS, ids=["single-string", "bad-json"])
def test_dynamodb_invalid_event_filter(pattern: str, case: str, aws: Aws) -> None:
    norm = Normaliser()
    _, arn = _table(aws, norm)
    fn = replay.function(aws, replay.role(aws))
    with pytest.raises(aws.client("lambda").exceptions.ClientError) as error:
        _create(
            aws, fn, arn, StartingPosition="TRIM_HORIZON", FilterCriteria={"Filters": [{"Pattern": pattern}]}
        )
    compare(
        f"{D}test_dynamodb_invalid_event_filter[{case}]",
        {"exception_event_source_creation": norm(error_facts(error.value))},
    )


def _failing(event: dict[str, Any]) -> Any:
    raise RuntimeError("recorded scenario: the function fails")


def test_dynamodb_event_source_mapping_with_on_failure_destination_config(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    table, arn = _table(aws, norm)
    qname, url, qarn = replay.queue(aws)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", qname), norm.add("resource", fn)
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
    aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "hello world"}})
    make_engine()
    body = replay.receive_one(aws, url)
    info = body["DDBStreamBatchInfo"]
    norm.add("shard-id", info["shardId"])
    norm.add("start-sequence-number", info["startSequenceNumber"])
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "destination_body": norm(body),
    }
    compare(D + "test_dynamodb_event_source_mapping_with_on_failure_destination_config", observed)


def test_deletion_event_source_mapping_with_dynamodb(aws: Aws) -> None:
    norm = Normaliser()
    _, arn = _table(aws, norm, label_first=True)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    created = _create(aws, fn, arn, StartingPosition="TRIM_HORIZON")
    listed = aws.client("lambda").list_event_source_mappings(EventSourceArn=arn)
    observed = {
        "create_event_source_mapping_result": norm(response_facts(created)),
        "list_event_source_mapping_result": norm(response_facts(listed)),
    }
    compare(D + "test_deletion_event_source_mapping_with_dynamodb", observed)


def test_disabled_dynamodb_event_source_mapping(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    table, arn = _table(aws, norm, label_first=True)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    invoker.register(fn, lambda event: None)
    created = _create(aws, fn, arn, StartingPosition="TRIM_HORIZON", MaximumBatchingWindowInSeconds=1)
    aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "id_value"}})
    make_engine()
    replay.wait_calls(invoker, fn, 1)
    updated = aws.client("lambda").update_event_source_mapping(UUID=created["UUID"], Enabled=False)
    observed = {
        "create_event_source_mapping_result": norm(response_facts(created)),
        "update_event_source_mapping_result": norm(response_facts(updated)),
    }
    compare(D + "test_disabled_dynamodb_event_source_mapping", observed)


def _keyed_table(aws: Aws, norm: Normaliser, key: str, view: str) -> tuple[str, str]:
    """A table keyed on ``key`` with a ``view`` stream; table, label and TableId registered."""
    name = f"table-{replay.uuid.uuid4().hex[:8]}"
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )
    arn = str(ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"])
    norm.add("uuid", "recorded-table-id")
    norm.add("resource", name), norm.add("resource", arn.rsplit("/", 1)[1])
    return name, arn


def _events(norm: Normaliser, calls: list[Any]) -> list[Any]:
    """Invocation events, ids and sequence numbers numbered in delivery order."""
    for call in calls:
        for record in call.records:
            norm.add("event-i-d", record["eventID"])
            norm.add("sequence-number", record["dynamodb"]["SequenceNumber"])
    return [norm(call.event) for call in calls]


def _with_parsed_patterns(response: dict[str, Any]) -> dict[str, Any]:
    # The recording parsed each Pattern (a JSON string in the API) before storing it.
    out = response_facts(response)
    filters = out["FilterCriteria"]["Filters"]
    out["FilterCriteria"] = {"Filters": [{"Pattern": json.loads(f["Pattern"])} for f in filters]}
    return out


S = "S"
# case: (filter pattern, first item, second item, invocations expected in the end), as recorded.
FILTER_CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]] = {
    "insert_same_entry_twice": (
        {"eventName": ["INSERT"]},
        {"id": {S: "id_value"}, "id2": {S: "id2_value"}},
        {"id": {S: "id_value"}, "id2": {S: "id2_value"}},
        1,
    ),
    "content_or_filter": (
        {"eventName": ["INSERT", "MODIFY"]},
        {"id": {S: "id_value"}},
        {"id": {S: "id_value"}, "id2": {S: "id2_new_value"}},
        2,
    ),
    "content_multiple_filters": (
        {"eventName": ["INSERT"], "eventSource": ["aws:dynamodb"]},
        {"id": {S: "id_value"}},
        {"id": {S: "id_value"}, "id2": {S: "id2_new_value"}},
        1,
    ),
    "content_filter_type": (
        {"dynamodb": {"NewImage": {"presentKey": {S: ["presentValue"]}}}},
        {"id": {S: "id_value_1"}, "presentKey": {S: "presentValue"}},
        {"id": {S: "id_value_2"}},
        1,
    ),
    "exists_filter_type": (
        {"dynamodb": {"NewImage": {"presentKey": {S: [{"exists": True}]}}}},
        {"id": {S: "id_value_1"}, "presentKey": {S: "presentValue"}},
        {"id": {S: "id_value_2"}},
        1,
    ),
    "exists_false_filter": (
        {"dynamodb": {"NewImage": {"presentKey": [{"exists": False}]}}},
        {"id": {S: "id_value_1"}},
        {"id": {S: "id_value_2"}, "presentKey": {S: "presentValue"}},
        2,
    ),
    "numeric_filter": (
        {
            "dynamodb": {
                "NewImage": {"numericFilter": {"N": [{"numeric": [">", 100]}, {"anything-but": "101"}]}}
            }
        },
        {"id": {S: "id_value_1"}, "numericFilter": {"N": "42"}},
        {"id": {S: "id_value_2"}, "numericFilter": {"N": "101"}},
        1,
    ),
    "prefix_filter": (
        {"dynamodb": {"NewImage": {"prefix": {S: [{"prefix": "us-1"}]}}}},
        {"id": {S: "id_value_1"}, "prefix": {S: "us-1-other-suffix"}},
        {"id": {S: "id_value_1"}, "prefix": {S: "other-suffix"}},
        1,
    ),
    "date_time_conversion": (
        {"dynamodb": {"ApproximateCreationDateTime": [{"numeric": [">", 0]}]}},
        {"id": {S: "id_value_1"}},
        {"id": {S: "id_value_2"}},
        2,
    ),
}


@pytest.mark.parametrize("case", list(FILTER_CASES))
def test_dynamodb_event_filter(
    case: str, aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    pattern, first, second, calls = FILTER_CASES[case]
    norm = Normaliser()
    table, arn = _keyed_table(aws, norm, "id", "NEW_AND_OLD_IMAGES")
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    invoker.register(fn, lambda event: None)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    engine = make_engine()
    ddb = aws.client("dynamodb")
    ddb.put_item(TableName=table, Item=first)
    replay.wait_calls(invoker, fn, 1)
    first_events = list(invoker.calls_for(fn))
    ddb.put_item(TableName=table, Item=second)
    replay.wait_calls(invoker, fn, calls)
    # Idle after the second write: a record the filter let through would have been delivered.
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    every = invoker.calls_for(fn)
    observed = {
        "create_event_source_mapping_response": norm(_with_parsed_patterns(created)),
        "lambda-log-events": _events(norm, first_events),
        "lambda-multiple-log-events": _events(norm, every),
    }
    compare(f"{D}test_dynamodb_event_filter[{case}]", observed)


def test_dynamodb_event_source_mapping(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    table, arn = _keyed_table(aws, norm, "my_partition_key", "NEW_IMAGE")
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    invoker.register(fn, lambda event: None)
    created = _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=1,
    )
    item = {"my_partition_key": {"S": "hello world"}, "binary_key": {"B": b"foobar"}}
    aws.client("dynamodb").put_item(TableName=table, Item=item)
    make_engine()
    calls = replay.wait_calls(invoker, fn, 1)
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "event_logs": _events(norm, calls),
    }
    compare(D + "test_dynamodb_event_source_mapping", observed)


def test_dynamodb_event_source_mapping_with_sns_on_failure_destination_config(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    table, arn = _table(aws, norm)
    topic = aws.client("sns").create_topic(Name=f"topic-{replay.uuid.uuid4().hex[:8]}")["TopicArn"]
    _, url, qarn = replay.queue(aws)
    aws.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", topic.rsplit(":", 1)[1]), norm.add("resource", fn)
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
    aws.client("dynamodb").put_item(TableName=table, Item={"pk": {"S": "hello world"}})
    make_engine()
    envelope = replay.receive_one(aws, url)
    message = json.loads(envelope["Message"])
    norm.add("shard-id", message["DDBStreamBatchInfo"]["shardId"])
    norm.add("start-sequence-number", message["DDBStreamBatchInfo"]["startSequenceNumber"])
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "failure_sns_message": norm(
            {
                "Message": message,
                "SignatureVersion": envelope.get("SignatureVersion"),
                "TopicArn": envelope.get("TopicArn"),
                "Type": envelope.get("Type"),
            }
        ),
    }
    compare(D + "test_dynamodb_event_source_mapping_with_sns_on_failure_destination_config", observed)


HELLO = {"my_partition_key": {"S": "hello world"}, "binary_key": {"B": b"foobar"}}


@pytest.mark.parametrize("case", list(replay.FAILURE_RESPONSES))
def test_dynamodb_report_batch_item_failure_scenarios(
    case: str, aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # The recording's create response is not in its snapshot; four invocations mean 3 retries.
    norm = Normaliser()
    name = f"table-{replay.uuid.uuid4().hex[:8]}"
    norm.add("uuid", "recorded-table-id"), norm.add("resource", name)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", fn)
    table, arn = _named_table(aws, name, "my_partition_key", "NEW_IMAGE")
    norm.add("resource", arn.rsplit("/", 1)[1])
    _, url, qarn = replay.queue(aws)
    response = replay.FAILURE_RESPONSES[case]
    invoker.register(fn, response if callable(response) else (lambda event: response))
    _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=3,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": qarn}},
    )
    aws.client("dynamodb").put_item(TableName=table, Item=HELLO)
    make_engine()
    body = replay.receive_one(aws, url)
    norm.add("shard-id", body["DDBStreamBatchInfo"]["shardId"])
    events = _events(norm, invoker.calls_for(fn))
    compare(
        f"{D}test_dynamodb_report_batch_item_failure_scenarios[{case}]",
        {"destination_body": norm(body), "dynamodb_events": events},
    )


SUCCESS_RESPONSES: dict[str, Any] = {
    "empty_list_success": [],
    "null_success": None,
    "empty_dict_success": {},
    "empty_batch_item_failure_success": {"batchItemFailures": []},
    "null_batch_item_failure_success": {"batchItemFailures": None},
}


@pytest.mark.parametrize("case", list(SUCCESS_RESPONSES))
def test_dynamodb_report_batch_item_success_scenarios(
    case: str, aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    table, arn = _keyed_table(aws, norm, "my_partition_key", "NEW_IMAGE")
    fn = replay.function(aws, replay.role(aws))
    invoker.register(fn, lambda event: SUCCESS_RESPONSES[case])
    _create(
        aws,
        fn,
        arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumBatchingWindowInSeconds=1,
        MaximumRetryAttempts=3,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    aws.client("dynamodb").put_item(TableName=table, Item=HELLO)
    engine = make_engine()
    replay.wait_calls(invoker, fn, 1)
    # Idle means the record was resolved: a retry would have shown up as a second invocation.
    assert engine.wait_until_idle(timeout=replay.TIMEOUT)
    events = _events(norm, invoker.calls_for(fn))
    compare(f"{D}test_dynamodb_report_batch_item_success_scenarios[{case}]", {"dynamodb_events": events})


def test_dynamodb_event_source_mapping_with_s3_on_failure_destination(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    norm = Normaliser()
    table, arn = _keyed_table(aws, norm, "my_partition_key", "NEW_IMAGE")
    bucket = f"bucket-{replay.uuid.uuid4().hex[:8]}"
    aws.client("s3").create_bucket(Bucket=bucket)
    fn = replay.function(aws, replay.role(aws))
    norm.add("resource", bucket), norm.add("resource", fn)
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
    aws.client("dynamodb").put_item(TableName=table, Item={"my_partition_key": {"S": "hello world"}})
    make_engine()
    _, body = replay.one_object(aws, bucket)
    norm.add("shard-id", body["DDBStreamBatchInfo"]["shardId"])
    for record in body["payload"]["Records"]:
        norm.add("event-i-d", record["eventID"])
        norm.add("sequence-number", record["dynamodb"]["SequenceNumber"])
    observed = {
        "create_event_source_mapping_response": norm(response_facts(created)),
        "record_body": norm(body),
    }
    compare(D + "test_dynamodb_event_source_mapping_with_s3_on_failure_destination", observed)


def test_esm_with_not_existing_dynamodb_stream(aws: Aws) -> None:
    fn = replay.function(aws, replay.role(aws))
    # The recording kept its (random) table name and stream label verbatim; we use the same.
    missing = (
        "arn:aws:dynamodb:us-east-1:123456789012:table/test-table-4a53f4e8/stream/2025-02-22T03:03:25.490"
    )
    with pytest.raises(aws.client("lambda").exceptions.ClientError) as error:
        _create(aws, fn, missing, StartingPosition="TRIM_HORIZON")
    compare(
        D + "test_esm_with_not_existing_dynamodb_stream", {"error": Normaliser()(error_facts(error.value))}
    )


def _named_table(aws: Aws, name: str, key: str, view: str) -> tuple[str, str]:
    ddb = aws.client("dynamodb")
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view},
    )
    return name, str(ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"])
