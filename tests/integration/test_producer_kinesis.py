"""KinesisProducer against a real Kinesis API (moto's server on 127.0.0.1)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from producers import KinesisProducer, RetryPolicy
from streamformat import deaggregate

pytestmark = pytest.mark.integration

REGION = "us-east-1"
# moto 5.2's Shard.put_record numbers a record "last sequence number + 1" without a lock, so two
# PutRecords calls served at once by its threaded server can overwrite each other's records. Real
# Kinesis has no such race; against moto the producer sends one request at a time.
MOTO_SAFE_IN_FLIGHT = 1


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A moto server on a free local port, with dummy credentials for every client in the module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        mp.delenv("AWS_PROFILE", raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def kinesis_client(endpoint: str) -> Any:
    return boto3.client("kinesis", endpoint_url=endpoint, region_name=REGION)


def create_stream(endpoint: str, shards: int = 2) -> str:
    """A fresh stream per test, so tests never see each other's records."""
    name = f"races-{uuid.uuid4().hex[:8]}"
    client = kinesis_client(endpoint)
    client.create_stream(StreamName=name, ShardCount=shards)
    client.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    return name


def read_stream(endpoint: str, stream_name: str) -> list[dict[str, Any]]:
    """Every record in every shard, from the trim horizon, as GetRecords returns them."""
    client = kinesis_client(endpoint)
    records: list[dict[str, Any]] = []
    shards = client.list_shards(StreamName=stream_name)["Shards"]
    for shard in shards:
        iterator = client.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            if not page["Records"]:
                break
            records += [{**r, "ShardId": shard["ShardId"]} for r in page["Records"]]
            iterator = page.get("NextShardIterator")
    return records


def user_payloads(records: list[dict[str, Any]]) -> list[tuple[str, bytes]]:
    return [(r["PartitionKey"], payload) for r in records for payload in deaggregate(r["Data"])]


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
def test_every_record_arrives_exactly_once(moto_endpoint: str, aggregate: bool):
    stream = create_stream(moto_endpoint, shards=3)
    sent = [
        (str(race), b'{"raceId":%d,"racerId":%d}' % (race, i)) for i in range(1200) for race in (11, 12, 13)
    ]
    # The producer builds its own client from endpoint and region
    with KinesisProducer(
        stream,
        endpoint_url=moto_endpoint,
        region=REGION,
        aggregate=aggregate,
        max_in_flight=MOTO_SAFE_IN_FLIGHT,
    ) as producer:
        for key, data in sent:
            producer.put(data, key)
    assert producer.last_result is not None and producer.last_result.ok
    stored = read_stream(moto_endpoint, stream)
    assert Counter(user_payloads(stored)) == Counter(sent)
    stats = producer.stats()
    assert stats.sent == len(sent) and stats.failed == 0
    assert stats.kinesis_records == len(stored)
    if aggregate:
        assert len(stored) < len(sent) / 50
        # One race per shard-routed record: the race's messages share its shard
        shard_of = {}
        for record in stored:
            assert shard_of.setdefault(record["PartitionKey"], record["ShardId"]) == record["ShardId"]


def test_missing_stream_returns_records_as_failed(moto_endpoint: str):
    producer = KinesisProducer(
        "no-such-stream",
        client=kinesis_client(moto_endpoint),
        retry_policy=RetryPolicy(record_ttl=2.0),
        linger_seconds=None,
    )
    producer.put(b"{}", "1")
    producer.put(b"[]", "2")
    result = producer.close()
    assert sorted(f.data for f in result.failed) == [b"[]", b"{}"]
    assert set(result.failures_by_code()) == {"ResourceNotFoundException"}


def test_stream_arn_addressing_works(moto_endpoint: str):
    stream = create_stream(moto_endpoint, shards=1)
    arn = kinesis_client(moto_endpoint).describe_stream_summary(StreamName=stream)[
        "StreamDescriptionSummary"
    ]["StreamARN"]
    with KinesisProducer(
        stream_arn=arn, client=kinesis_client(moto_endpoint), max_in_flight=MOTO_SAFE_IN_FLIGHT
    ) as producer:
        producer.put(b"hello", "1")
    assert user_payloads(read_stream(moto_endpoint, stream)) == [("1", b"hello")]
