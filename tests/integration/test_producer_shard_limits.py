"""The producer against localcloud's Kinesis shard limits: throttled entries are retried until all land."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from localcloud import LocalCloud
from producers import KinesisProducer, RetryPolicy

SHARD = "shardId-000000000000"


def _raw_kinesis(cloud: LocalCloud) -> Any:
    """A client without botocore retries: every throttle reaches the test."""
    return boto3.client(
        "kinesis",
        endpoint_url=cloud.endpoint_url,
        region_name=cloud.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(metrics=False) as running:
        yield running


def _read_all(kinesis: Any, stream: str, shard_id: str = SHARD) -> list[dict[str, Any]]:
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while True:
        answer = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
        records += answer["Records"]
        if not answer["Records"]:
            return records
        iterator = answer["NextShardIterator"]
        time.sleep(0.25)  # stay under 5 reads per second


@pytest.mark.integration
def test_producer_at_twice_the_shard_limit_is_throttled_and_retries_deliver_everything(
    cloud: LocalCloud,
) -> None:
    # Given one shard and a producer offering ~2,000 records/s for 2 s
    kinesis = _raw_kinesis(cloud)
    kinesis.create_stream(StreamName="hot", ShardCount=1)
    sent = [f"record-{i:05d}".encode() for i in range(4000)]
    policy = RetryPolicy(base_delay=0.05, max_delay=0.5, record_ttl=20.0)
    started = time.monotonic()
    # When
    with KinesisProducer("hot", client=kinesis, retry_policy=policy, linger_seconds=0.02) as producer:
        for index, payload in enumerate(sent):
            producer.put(payload, partition_key=str(index % 50))
            if index % 100 == 99:  # pace: 100 records every 50 ms
                time.sleep(max(0.0, started + (index + 1) / 2000 - time.monotonic()))
    # Then some entries were throttled and retried, and every record arrived exactly as sent
    assert producer.last_result is not None and not producer.last_result.failed
    assert producer.stats().retried > 0
    limits = cloud.shard_limits
    assert limits is not None and limits.throttled_records > 0
    received = sorted(r["Data"] for r in _read_all(kinesis, "hot"))
    assert received == sorted(sent)
