"""Concurrent requests to the local endpoint behave like AWS: every call is atomic."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from localcloud.server import aws_service_of

from localcloud import LocalCloud

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # Limits off: this checks that concurrent calls are atomic, not what one shard accepts per second.
    with LocalCloud(shard_limits=False) as running:
        yield running


def test_concurrent_put_records_lose_nothing(cloud: LocalCloud) -> None:
    kinesis = cloud.client("kinesis")
    kinesis.create_stream(StreamName="concurrent", ShardCount=1)

    def put(batch: int) -> None:
        entries = [{"Data": f"{batch}:{i}".encode(), "PartitionKey": "k"} for i in range(100)]
        assert kinesis.put_records(StreamName="concurrent", Records=entries)["FailedRecordCount"] == 0

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(40)))
    shard = kinesis.list_shards(StreamName="concurrent")["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(
        StreamName="concurrent", ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seen: list[bytes] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        seen.extend(r["Data"] for r in page["Records"])
        if not page["Records"]:
            break
        iterator = page["NextShardIterator"]
    assert len(seen) == 4000
    assert len(set(seen)) == 4000


def test_concurrent_conditional_increments_all_land(cloud: LocalCloud) -> None:
    ddb = cloud.client("dynamodb")
    ddb.create_table(
        TableName="counters",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="counters", Item={"pk": {"S": "c"}, "n": {"N": "0"}})
    lost = threading.Event()

    def increment(_: int) -> None:
        # Optimistic read-then-conditional-write, retried on conflict: no increment may be lost.
        for _attempt in range(200):
            current = int(ddb.get_item(TableName="counters", Key={"pk": {"S": "c"}})["Item"]["n"]["N"])
            try:
                ddb.put_item(
                    TableName="counters",
                    Item={"pk": {"S": "c"}, "n": {"N": str(current + 1)}},
                    ConditionExpression="n = :seen",
                    ExpressionAttributeValues={":seen": {"N": str(current)}},
                )
                return
            except ddb.exceptions.ConditionalCheckFailedException:
                continue
        lost.set()

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(increment, range(60)))
    assert not lost.is_set()
    assert ddb.get_item(TableName="counters", Key={"pk": {"S": "c"}})["Item"]["n"]["N"] == "60"


def test_middleware_sees_and_can_answer_aws_calls(cloud: LocalCloud) -> None:
    seen: list[str | None] = []

    def refuse_sqs(app):  # type: ignore[no-untyped-def]
        def wrapped(environ, start_response):  # type: ignore[no-untyped-def]
            service = aws_service_of(environ)
            seen.append(service)
            if service == "sqs":
                body = b'{"__type": "com.amazonaws.sqs#ServiceUnavailable", "message": "injected"}'
                start_response("503 Service Unavailable", [("Content-Type", "application/x-amz-json-1.0")])
                return [body]
            return app(environ, start_response)

        return wrapped

    cloud.add_middleware(refuse_sqs)
    try:
        cloud.client("kinesis").list_streams()
        with pytest.raises(Exception, match=r"injected|ServiceUnavailable|503"):
            cloud.client("sqs").list_queues()
    finally:
        cloud.remove_middleware(refuse_sqs)
    assert "kinesis" in seen and "sqs" in seen
    cloud.client("sqs").list_queues()  # removed: calls pass again
