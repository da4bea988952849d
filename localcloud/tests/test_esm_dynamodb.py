"""DynamoDB Streams mappings: record shapes, TTL deletions, partial failures, windows, filters."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)
from esm_support import (
    ACCOUNT,
    REGION,
    Aws,
    EngineFactory,
    RecordingInvoker,
    aws,
    invoker,
    make_engine,
    moto_endpoint,
)
from moto.dynamodb.models import dynamodb_backends

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _put(aws: Aws, table: str, pk: str, **attrs: Any) -> None:
    item: dict[str, Any] = {"pk": {"S": pk}}
    for key, value in attrs.items():
        item[key] = {"N": str(value)} if isinstance(value, int) else {"S": value}
    aws.client("dynamodb").put_item(TableName=table, Item=item)


def test_insert_modify_remove_arrive_in_lambdas_dynamodb_shape(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a table stream with an insert, an update and a delete of one item
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    table, stream_arn = aws.table()
    _put(aws, table, "a", v=1)
    _put(aws, table, "a", v=2)
    aws.client("dynamodb").delete_item(TableName=table, Key={"pk": {"S": "a"}})
    aws.mapping(name, stream_arn)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    records = invoker.delivered(name)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert list(records[0]) == [
        "eventID",
        "eventName",
        "eventVersion",
        "eventSource",
        "awsRegion",
        "dynamodb",
        "eventSourceARN",
    ]
    for record in records:
        assert re.fullmatch(r"[0-9a-f]{32}", record["eventID"])
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == REGION
        assert record["eventSourceARN"] == stream_arn
        change = record["dynamodb"]
        assert isinstance(change["ApproximateCreationDateTime"], float)
        assert change["Keys"] == {"pk": {"S": "a"}}
        assert isinstance(change["SequenceNumber"], str)
        assert isinstance(change["SizeBytes"], int)
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert "userIdentity" not in record
    insert, modify, remove = (r["dynamodb"] for r in records)
    assert insert["NewImage"] == {"pk": {"S": "a"}, "v": {"N": "1"}} and "OldImage" not in insert
    assert modify["OldImage"]["v"] == {"N": "1"} and modify["NewImage"]["v"] == {"N": "2"}
    assert remove["OldImage"]["v"] == {"N": "2"} and "NewImage" not in remove
    seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert seqs == sorted(seqs)
    for call in invoker.calls_for(name):
        DynamoDBStreamModel.model_validate(call.event)


def test_ttl_deletion_carries_the_service_user_identity(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a REMOVE made by TTL (moto cannot expire items, so the stream record is marked in moto)
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    table, stream_arn = aws.table()
    _put(aws, table, "gone", v=1)
    aws.client("dynamodb").delete_item(TableName=table, Key={"pk": {"S": "gone"}})
    shard = dynamodb_backends[ACCOUNT][REGION].get_table(table).stream_shard
    assert shard is not None
    shard.items[-1].record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    aws.mapping(name, stream_arn)
    assert make_engine().wait_until_idle(10)
    insert, remove = invoker.delivered(name)
    assert "userIdentity" not in insert
    assert remove["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    model = DynamoDBStreamModel.model_validate(invoker.calls_for(name)[0].event)
    assert model.Records[1].userIdentity is not None


def test_partial_failure_uses_sequence_number_and_ddb_batch_info(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, fn_arn, _ = aws.function()
    table, stream_arn = aws.table()
    for i in range(4):
        _put(aws, table, f"item-{i}", v=i)
    dlq_url, dlq_arn = aws.queue()
    aws.mapping(
        name,
        stream_arn,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )

    def handler(event: dict[str, Any]) -> Any:
        bad = [r for r in event["Records"] if r["dynamodb"]["Keys"]["pk"]["S"] == "item-2"]
        return {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in bad]}

    invoker.register(name, handler)
    assert make_engine().wait_until_idle(10)
    calls = invoker.calls_for(name)
    keys = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in c.records] for c in calls]
    assert keys == [["item-0", "item-1", "item-2", "item-3"], ["item-2", "item-3"]]
    [failure] = aws.drain_queue(dlq_url, 1)
    assert "KinesisBatchInfo" not in failure
    info = failure["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == calls[1].records[0]["dynamodb"]["SequenceNumber"]
    assert info["endSequenceNumber"] == calls[1].records[1]["dynamodb"]["SequenceNumber"]
    assert info["batchSize"] == 2
    assert info["streamArn"] == stream_arn
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["requestContext"]["functionArn"] == fn_arn
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(failure)


def test_tumbling_window_on_a_table_stream(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        state = dict(event["state"])
        if not event["isFinalInvokeForWindow"]:
            state["keys"] = [
                *state.get("keys", []),
                *[r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]],
            ]
        return {"state": state}

    invoker.register(name, handler)
    table, stream_arn = aws.table()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1, BatchSize=2)
    for i in range(5):
        _put(aws, table, f"k{i}")
    engine = make_engine()
    assert engine.wait_until_idle(10, include_windows=True)
    calls = invoker.calls_for(name)
    finals = [c for c in calls if c.event["isFinalInvokeForWindow"]]
    assert sorted(k for f in finals for k in f.event["state"]["keys"]) == [f"k{i}" for i in range(5)]
    assert len({f.event["window"]["start"] for f in finals}) == len(finals)
    for call in calls:
        assert call.event["eventSourceARN"] == stream_arn
        assert call.event["shardId"].startswith("shardId-")
        DynamoDBStreamModel.model_validate(call.event)


def test_filters_apply_to_the_dynamodb_record(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    table, stream_arn = aws.table()
    numeric, *_ = aws.function()
    invoker.register(numeric, lambda event: None)
    keep = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"kind": {"S": ["keep"]}}}}
    aws.mapping(name, stream_arn, FilterCriteria={"Filters": [{"Pattern": json.dumps(keep)}]})
    # Numeric operators do not match DynamoDB's N strings
    over = {"dynamodb": {"NewImage": {"v": {"N": [{"numeric": [">", 0]}]}}}}
    aws.mapping(numeric, stream_arn, FilterCriteria={"Filters": [{"Pattern": json.dumps(over)}]})
    _put(aws, table, "a", kind="keep", v=1)
    _put(aws, table, "b", kind="drop", v=2)
    _put(aws, table, "a", kind="keep", v=3)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    delivered = invoker.delivered(name)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in delivered] == [("INSERT", "a")]
    assert invoker.calls_for(numeric) == []
    assert sum(s.filtered for s in engine.stats()) == 5
