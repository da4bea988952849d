"""DynamoDB Streams mapping scenarios recorded on AWS (test_lambda_integration_dynamodbstreams),
replayed against localcloud with the engine's shortened timings and scored like the Kinesis ones.
"""

from __future__ import annotations

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
