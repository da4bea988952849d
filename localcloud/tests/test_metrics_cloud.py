"""localcloud publishes AWS's metrics (and EMF log lines) to CloudWatch, read back with GetMetricData."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from localcloud import LocalCloud, TooManyRequestsError

TEMPLATE = Path(__file__).parent / "templates" / "metrics_basic" / "template.yaml"
RECORDS = 20

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # A long interval: the test decides when metrics are published (flush).
    with LocalCloud(metrics_interval_s=60.0) as running:
        yield running


@pytest.fixture(scope="module")
def outputs(cloud: LocalCloud) -> dict[str, str]:
    outputs = cloud.deploy(TEMPLATE, "metrics").outputs
    kinesis = cloud.client("kinesis")
    # Given traffic on every service: records through the mapping into the function and table,
    records = [{"Data": json.dumps({"n": i}).encode(), "PartitionKey": f"k{i}"} for i in range(RECORDS)]
    assert kinesis.put_records(StreamName=outputs["StreamName"], Records=records)["FailedRecordCount"] == 0
    # a burst over one shard's limit on a stream of its own,
    kinesis.create_stream(StreamName="burst", ShardCount=1)
    for batch in range(10):  # until the shard's 1,000 records/s run out
        burst = [{"Data": b"b", "PartitionKey": f"{batch}-{i}"} for i in range(500)]
        if kinesis.put_records(StreamName="burst", Records=burst)["FailedRecordCount"]:
            break
    outputs["BurstRecords"] = str(500 * (batch + 1))
    # messages on the queue, one of them received and deleted,
    sqs = cloud.client("sqs")
    for i in range(3):
        sqs.send_message(QueueUrl=outputs["QueueUrl"], MessageBody=f"m{i}")
    received = sqs.receive_message(QueueUrl=outputs["QueueUrl"], MaxNumberOfMessages=1)["Messages"]
    sqs.delete_message(QueueUrl=outputs["QueueUrl"], ReceiptHandle=received[0]["ReceiptHandle"])
    # a function that fails and one that is always throttled.
    assert not cloud.invoke(outputs["FailingName"], {}).ok
    with pytest.raises(TooManyRequestsError):
        cloud.invoke(outputs["ThrottledName"], {})
    assert cloud.wait_for_mappings(timeout=60)
    # When localcloud publishes what it observed
    assert cloud.flush_metrics() > 0
    return outputs


def _stat(
    cloud: LocalCloud, namespace: str, name: str, dimensions: dict[str, str], stat: str = "Sum"
) -> float | None:
    """The statistic over the last ten minutes (None when there is no data point)."""
    now = datetime.now(UTC)
    answer = cloud.client("cloudwatch").get_metric_data(
        MetricDataQueries=[
            {
                "Id": "q",
                "MetricStat": {
                    "Metric": {
                        "Namespace": namespace,
                        "MetricName": name,
                        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
                    },
                    "Period": 600,
                    "Stat": stat,
                },
            }
        ],
        StartTime=now - timedelta(minutes=9),
        EndTime=now + timedelta(minutes=1),
    )
    values = answer["MetricDataResults"][0]["Values"]
    if not values:
        return None
    return float(max(values) if stat == "Maximum" else sum(values))


def _dimension_sets(cloud: LocalCloud, namespace: str, name: str) -> list[list[dict[str, str]]]:
    """ListMetrics: the dimension sets ``name`` has in ``namespace``."""
    listed: list[dict[str, Any]] = cloud.client("cloudwatch").list_metrics(
        Namespace=namespace, MetricName=name
    )["Metrics"]
    return [m["Dimensions"] for m in listed]


def test_kinesis_stream_metrics(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    stream = {"StreamName": outputs["StreamName"]}
    sizes = sum(len(json.dumps({"n": i}).encode()) + len(f"k{i}") for i in range(RECORDS))
    # Then each write is counted once (moto's own per-call data points are not added on top)
    assert _stat(cloud, "AWS/Kinesis", "IncomingRecords", stream) == RECORDS
    assert _stat(cloud, "AWS/Kinesis", "IncomingBytes", stream) == sizes
    assert _stat(cloud, "AWS/Kinesis", "PutRecords.TotalRecords", stream) == RECORDS
    assert _stat(cloud, "AWS/Kinesis", "PutRecords.SuccessfulRecords", stream) == RECORDS
    assert _stat(cloud, "AWS/Kinesis", "PutRecords.Success", stream) == 1
    assert _stat(cloud, "AWS/Kinesis", "PutRecords.ThrottledRecords", stream) == 0
    # and the mapping's reads are measured
    assert (_stat(cloud, "AWS/Kinesis", "GetRecords.Records", stream) or 0) >= RECORDS
    assert (_stat(cloud, "AWS/Kinesis", "GetRecords.Success", stream) or 0) >= 1
    assert _stat(cloud, "AWS/Kinesis", "GetRecords.IteratorAgeMilliseconds", stream, "Maximum") is not None
    assert _stat(cloud, "AWS/Kinesis", "ReadProvisionedThroughputExceeded", stream) is not None
    assert [{"Name": "StreamName", "Value": outputs["StreamName"]}] in _dimension_sets(
        cloud, "AWS/Kinesis", "IncomingRecords"
    )


def test_kinesis_throttled_writes(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    burst = {"StreamName": "burst"}
    throttled = _stat(cloud, "AWS/Kinesis", "PutRecords.ThrottledRecords", burst)
    assert throttled is not None and throttled > 0
    assert _stat(cloud, "AWS/Kinesis", "WriteProvisionedThroughputExceeded", burst) == throttled
    accepted = _stat(cloud, "AWS/Kinesis", "IncomingRecords", burst)
    assert accepted == int(outputs["BurstRecords"]) - throttled


def test_lambda_metrics(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    consumer = {"FunctionName": outputs["FunctionName"]}
    invocations = _stat(cloud, "AWS/Lambda", "Invocations", consumer)
    assert invocations is not None and invocations >= 1
    assert _stat(cloud, "AWS/Lambda", "Errors", consumer) == 0
    assert _stat(cloud, "AWS/Lambda", "Duration", consumer, "SampleCount") == invocations
    assert (_stat(cloud, "AWS/Lambda", "ConcurrentExecutions", consumer, "Maximum") or 0) >= 1
    assert _stat(cloud, "AWS/Lambda", "IteratorAge", consumer, "Maximum") is not None
    failing = {"FunctionName": outputs["FailingName"]}
    assert _stat(cloud, "AWS/Lambda", "Errors", failing) == 1
    assert _stat(cloud, "AWS/Lambda", "Invocations", failing) == 1
    throttled = {"FunctionName": outputs["ThrottledName"]}
    assert _stat(cloud, "AWS/Lambda", "Throttles", throttled) == 1
    assert _stat(cloud, "AWS/Lambda", "Invocations", throttled) is None


def test_dynamodb_capacity_estimates(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    table = {"TableName": outputs["TableName"]}
    # Every item is under 1 KB: one WCU per put, one RCU per strongly consistent get.
    assert _stat(cloud, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table) == RECORDS
    assert _stat(cloud, "AWS/DynamoDB", "ConsumedReadCapacityUnits", table) == RECORDS
    latency = {"TableName": outputs["TableName"], "Operation": "PutItem"}
    assert _stat(cloud, "AWS/DynamoDB", "SuccessfulRequestLatency", latency, "SampleCount") == RECORDS


def test_sqs_metrics(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    queue = {"QueueName": outputs["QueueName"]}
    assert _stat(cloud, "AWS/SQS", "NumberOfMessagesSent", queue) == 3
    assert _stat(cloud, "AWS/SQS", "NumberOfMessagesReceived", queue) == 1
    assert _stat(cloud, "AWS/SQS", "NumberOfMessagesDeleted", queue) == 1
    # The one received message is deleted; the other two wait in the queue.
    assert _stat(cloud, "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum") == 2


def test_embedded_metric_format_lines_become_metrics(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    assert _stat(cloud, "LocalcloudTest", "RecordsWritten", {"service": "consumer"}) == RECORDS
    assert _dimension_sets(cloud, "LocalcloudTest", "RecordsWritten") == [
        [{"Name": "service", "Value": "consumer"}]
    ]


def test_dynamodb_capacity_follows_item_sizes_per_operation(
    cloud: LocalCloud, outputs: dict[str, str]
) -> None:
    # Given a table of its own
    ddb = cloud.client("dynamodb")
    ddb.create_table(
        TableName="sized",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    big = {"pk": {"S": "big"}, "blob": {"S": "x" * 2500}}  # 2,510 bytes: 3 WCUs
    # When items of known sizes are written, updated, deleted and read
    ddb.put_item(TableName="sized", Item=big)  # 3
    ddb.update_item(  # the larger of before and after: 3
        TableName="sized",
        Key={"pk": {"S": "big"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1"}},
    )
    ddb.delete_item(TableName="sized", Key={"pk": {"S": "big"}})  # the deleted item: 3
    ddb.batch_write_item(
        RequestItems={"sized": [{"PutRequest": {"Item": {"pk": {"S": f"s{i}"}}}} for i in range(2)]}
    )  # 1 + 1
    ddb.transact_write_items(
        TransactItems=[{"Put": {"TableName": "sized", "Item": {"pk": {"S": "t"}}}}]
    )  # 2 x 1
    ddb.scan(TableName="sized")  # 3 small items, eventually consistent: 0.5
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
        ddb.put_item(
            TableName="sized", Item={"pk": {"S": "t"}}, ConditionExpression="attribute_not_exists(pk)"
        )
    with pytest.raises(ddb.exceptions.ResourceNotFoundException):
        ddb.get_item(TableName="no-such-table", Key={"pk": {"S": "x"}})
    cloud.flush_metrics()
    # Then the estimates follow DynamoDB's rounding
    table = {"TableName": "sized"}
    assert _stat(cloud, "AWS/DynamoDB", "ConsumedWriteCapacityUnits", table) == 3 + 3 + 3 + 2 + 2
    assert _stat(cloud, "AWS/DynamoDB", "ConsumedReadCapacityUnits", table) == 0.5
    assert _stat(cloud, "AWS/DynamoDB", "ReturnedItemCount", {**table, "Operation": "Scan"}) == 3
    assert _stat(cloud, "AWS/DynamoDB", "ConditionalCheckFailedRequests", table) == 1
    assert (_stat(cloud, "AWS/DynamoDB", "UserErrors", {}) or 0) >= 1


def test_old_published_points_are_trimmed_but_other_namespaces_are_kept(cloud: LocalCloud) -> None:
    from localcloud.metrics import MetricId  # noqa: PLC0415

    publisher = cloud.metrics
    assert publisher is not None
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    old = MetricId("LocalcloudOld", "Stale", (("k", "v"),), "Count")
    publisher.aggregator.add(old, 1.0, timestamp=two_hours_ago.timestamp())
    cloud.flush_metrics()
    cloud.client("cloudwatch").put_metric_data(
        Namespace="UserOwn", MetricData=[{"MetricName": "Kept", "Value": 1.0, "Timestamp": two_hours_ago}]
    )
    assert publisher.trim() >= 1
    assert cloud.client("cloudwatch").list_metrics(Namespace="LocalcloudOld")["Metrics"] == []
    assert [
        m["MetricName"] for m in cloud.client("cloudwatch").list_metrics(Namespace="UserOwn")["Metrics"]
    ] == ["Kept"]
