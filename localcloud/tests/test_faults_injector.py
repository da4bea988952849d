"""The fault injector itself, against a real localcloud endpoint and plain boto3 clients.

Each rule must fail exactly what it says (and nothing it does not), in a shape the SDK parses as
the real AWS error, and count what it injected.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from localcloud.aws import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY
from localcloud.faults import (
    ErrorResponse,
    FaultInjector,
    Latency,
    PutRecordsEntryFailures,
    UnprocessedItems,
    UnprocessedKeys,
    aws_operation_of,
)

from localcloud import LocalCloud

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("localcloud-faults-injector")]


@pytest.fixture(scope="module")
def cloud() -> Iterator[tuple[LocalCloud, FaultInjector]]:
    local = LocalCloud()
    injector = FaultInjector(seed=5)
    local.add_middleware(injector)
    local.start()
    try:
        local.client("kinesis").create_stream(StreamName="faults", ShardCount=1)
        local.client("dynamodb").create_table(
            TableName="faults",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield local, injector
    finally:
        injector.clear()
        local.stop()


def _no_retries(cloud: LocalCloud, service: str) -> Any:
    """A client that shows every injected fault (botocore's retries off)."""
    import boto3  # noqa: PLC0415

    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def _shard_records(cloud: LocalCloud) -> list[bytes]:
    kinesis = cloud.client("kinesis")
    shard = kinesis.list_shards(StreamName="faults")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="faults", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )
    return [r["Data"] for r in kinesis.get_records(ShardIterator=iterator["ShardIterator"])["Records"]]


def test_operation_names_come_from_the_target_header_or_the_action() -> None:
    assert aws_operation_of({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}) == "PutItem"
    assert aws_operation_of({"QUERY_STRING": "Action=SendMessage&Version=1"}) == "SendMessage"
    form = {"CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"}
    assert aws_operation_of(form, b"Action=Publish&TopicArn=x") == "Publish"
    assert aws_operation_of({"PATH_INFO": "/bucket/key"}) is None


def test_rule_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        ErrorResponse("dynamodb", rate=1.5)


def test_error_response_fails_only_matching_calls_as_the_aws_error(
    cloud: tuple[LocalCloud, FaultInjector],
) -> None:
    local, injector = cloud
    ddb = _no_retries(local, "dynamodb")
    rule = ErrorResponse(
        "dynamodb",
        {"PutItem"},
        code="ProvisionedThroughputExceededException",
        message="The level of configured provisioned throughput for the table was exceeded.",
    )
    with injector.active(rule):
        with pytest.raises(ClientError) as raised:
            ddb.put_item(TableName="faults", Item={"pk": {"S": "a"}})
        # Other operations pass.
        assert "Item" not in ddb.get_item(TableName="faults", Key={"pk": {"S": "a"}})
    error = raised.value.response
    assert error["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert rule.injected == 1 and rule.matched == 1
    # Removed: the call goes through again, and the failed put had not been applied.
    ddb.put_item(TableName="faults", Item={"pk": {"S": "a"}})
    assert ddb.get_item(TableName="faults", Key={"pk": {"S": "a"}})["Item"]["pk"] == {"S": "a"}
    assert injector.calls_to("dynamodb", "PutItem") >= 2


def test_server_errors_are_500s_the_sdk_retries(cloud: tuple[LocalCloud, FaultInjector]) -> None:
    local, injector = cloud
    rule = ErrorResponse("kinesis", {"DescribeStreamSummary"}, status=500, code="InternalFailure", limit=1)
    calls = injector.calls_to("kinesis", "DescribeStreamSummary")
    with injector.active(rule):
        # The cloud's client retries once: the second attempt passes the exhausted rule.
        summary = local.client("kinesis").describe_stream_summary(StreamName="faults")
    assert summary["StreamDescriptionSummary"]["StreamName"] == "faults"
    assert rule.injected == 1 and injector.calls_to("kinesis", "DescribeStreamSummary") == calls + 2


def test_query_protocol_errors_are_xml(cloud: tuple[LocalCloud, FaultInjector]) -> None:
    local, injector = cloud
    sns = _no_retries(local, "sns")
    with (
        injector.active(ErrorResponse("sns", {"CreateTopic"}, code="Throttled", message="slow down")) as rule,
        pytest.raises(ClientError) as raised,
    ):
        sns.create_topic(Name="faults")
    assert raised.value.response["Error"]["Code"] == "Throttled"
    assert raised.value.response["Error"]["Message"] == "slow down"
    assert rule.injected == 1


def test_rate_limit_duration_and_body_filter(cloud: tuple[LocalCloud, FaultInjector]) -> None:
    local, injector = cloud
    ddb = _no_retries(local, "dynamodb")

    def failures(rule: ErrorResponse, calls: int, key: str = "r") -> int:
        failed = 0
        with injector.active(rule):
            for _ in range(calls):
                try:
                    ddb.get_item(TableName="faults", Key={"pk": {"S": key}})
                except ClientError:
                    failed += 1
        return failed

    share = ErrorResponse("dynamodb", {"GetItem"}, rate=0.3)
    failed = failures(share, 200)
    assert 20 <= failed <= 100 and share.injected == failed and share.matched == 200
    capped = ErrorResponse("dynamodb", {"GetItem"}, limit=3)
    assert failures(capped, 10) == 3 and capped.injected == 3
    expired = ErrorResponse("dynamodb", {"GetItem"}, duration_s=0.0)
    assert failures(expired, 5) == 0 and expired.injected == 0
    narrow = ErrorResponse("dynamodb", {"GetItem"}, body_contains='"only-me"')
    assert failures(narrow, 3, key="other") == 0
    assert failures(narrow, 3, key="only-me") == 3


def test_latency_delays_then_applies(cloud: tuple[LocalCloud, FaultInjector]) -> None:
    local, injector = cloud
    ddb = local.client("dynamodb")
    with injector.active(Latency("dynamodb", {"PutItem"}, delay_s=0.4)) as rule:
        started = time.monotonic()
        ddb.put_item(TableName="faults", Item={"pk": {"S": "slow"}})
        elapsed = time.monotonic() - started
    assert elapsed >= 0.4 and rule.injected == 1
    assert "Item" in ddb.get_item(TableName="faults", Key={"pk": {"S": "slow"}})


def test_put_records_entries_fail_in_place_and_are_not_written(
    cloud: tuple[LocalCloud, FaultInjector],
) -> None:
    local, injector = cloud
    kinesis = _no_retries(local, "kinesis")
    before = len(_shard_records(local))
    entries = [{"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(200)]
    with injector.active(PutRecordsEntryFailures("kinesis", rate=0.3)) as rule:
        response = kinesis.put_records(StreamName="faults", Records=entries)
    outcomes = response["Records"]
    assert len(outcomes) == 200
    failed = [i for i, o in enumerate(outcomes) if "ErrorCode" in o]
    assert response["FailedRecordCount"] == len(failed) == rule.injected
    assert 30 <= len(failed) <= 90
    assert {outcomes[i]["ErrorCode"] for i in failed} == {"ProvisionedThroughputExceededException"}
    assert all("SequenceNumber" in o and "ShardId" in o for o in outcomes if "ErrorCode" not in o)
    written = _shard_records(local)[before:]
    assert written == [e["Data"] for i, e in enumerate(entries) if i not in set(failed)]


def test_put_records_with_every_entry_failed_never_reaches_the_stream(
    cloud: tuple[LocalCloud, FaultInjector],
) -> None:
    local, injector = cloud
    before = len(_shard_records(local))
    with injector.active(PutRecordsEntryFailures("kinesis", rate=1.0)):
        response = _no_retries(local, "kinesis").put_records(
            StreamName="faults", Records=[{"Data": b"x", "PartitionKey": "k"}] * 3
        )
    assert response["FailedRecordCount"] == 3
    assert len(_shard_records(local)) == before


def test_batch_get_keys_come_back_unprocessed_with_their_read_options(
    cloud: tuple[LocalCloud, FaultInjector],
) -> None:
    local, injector = cloud
    ddb = _no_retries(local, "dynamodb")
    keys = [{"pk": {"S": f"bg{i}"}} for i in range(40)]
    for key in keys:
        ddb.put_item(TableName="faults", Item=key)
    with injector.active(UnprocessedKeys("dynamodb", rate=0.5)) as rule:
        response = ddb.batch_get_item(RequestItems={"faults": {"Keys": keys, "ConsistentRead": True}})
    read = {item["pk"]["S"] for item in response["Responses"]["faults"]}
    unprocessed = response["UnprocessedKeys"]["faults"]
    assert unprocessed["ConsistentRead"] is True
    held = {key["pk"]["S"] for key in unprocessed["Keys"]}
    assert len(held) == rule.injected > 0 and read.isdisjoint(held)
    assert read | held == {key["pk"]["S"] for key in keys}
    # Every key unprocessed: answered without the backend (which rejects an empty batch).
    with injector.active(UnprocessedKeys("dynamodb", rate=1.0)):
        response = ddb.batch_get_item(RequestItems={"faults": {"Keys": keys[:2]}})
    assert response["Responses"] == {"faults": []}
    assert len(response["UnprocessedKeys"]["faults"]["Keys"]) == 2


def test_batch_write_items_come_back_unprocessed_and_are_not_applied(
    cloud: tuple[LocalCloud, FaultInjector],
) -> None:
    local, injector = cloud
    ddb = _no_retries(local, "dynamodb")
    writes = [{"PutRequest": {"Item": {"pk": {"S": f"bw{i}"}}}} for i in range(20)]
    with injector.active(UnprocessedItems("dynamodb", rate=0.5)) as rule:
        response = ddb.batch_write_item(RequestItems={"faults": writes})
    held = [w["PutRequest"]["Item"]["pk"]["S"] for w in response["UnprocessedItems"]["faults"]]
    assert len(held) == rule.injected > 0
    for i in range(20):
        present = "Item" in ddb.get_item(TableName="faults", Key={"pk": {"S": f"bw{i}"}})
        assert present == (f"bw{i}" not in held)


def test_rules_apply_in_order_and_counters_count_every_call(cloud: tuple[LocalCloud, FaultInjector]) -> None:
    local, injector = cloud
    ddb = _no_retries(local, "dynamodb")
    first = ErrorResponse("dynamodb", {"GetItem"}, code="First", limit=1)
    second = ErrorResponse("dynamodb", {"GetItem"}, code="Second", limit=1)
    seen = injector.calls_to("dynamodb", "GetItem")
    with injector.active(first), injector.active(second):
        codes = []
        for _ in range(3):
            try:
                ddb.get_item(TableName="faults", Key={"pk": {"S": "x"}})
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
    assert codes == ["First", "Second", "ok"]
    assert injector.calls_to("dynamodb", "GetItem") == seen + 3
    assert injector.rules == []
