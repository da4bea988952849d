"""Kinesis per-shard limits on a real LocalCloud: throttled writes and reads, retries that deliver all."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from localcloud.limits import THROTTLED, ShardLimits, ShardLimitSettings, TokenBucket

from localcloud import LocalCloud

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
def test_without_limits_nothing_is_throttled() -> None:
    with LocalCloud(shard_limits=False, metrics=False) as cloud:
        kinesis = _raw_kinesis(cloud)
        kinesis.create_stream(StreamName="free", ShardCount=1)
        failed = 0
        for batch in range(6):  # 3,000 records in well under a second
            records = [{"Data": b"x" * 100, "PartitionKey": f"{batch}-{i}"} for i in range(500)]
            failed += kinesis.put_records(StreamName="free", Records=records)["FailedRecordCount"]
        assert failed == 0
        assert cloud.shard_limits is None
        assert len(_read_all(kinesis, "free")) == 3000


@pytest.mark.integration
def test_put_records_over_the_record_limit_fails_entries_in_order(cloud: LocalCloud) -> None:
    kinesis = _raw_kinesis(cloud)
    kinesis.create_stream(StreamName="s", ShardCount=1)
    answers: list[dict[str, Any]] = []
    # 500-record calls back to back: the 1,000-record budget runs out within a few calls.
    while len(answers) < 10 and not (answers and answers[-1]["FailedRecordCount"]):
        entries = [{"Data": b"x", "PartitionKey": f"{len(answers)}-{i}"} for i in range(500)]
        answers.append(kinesis.put_records(StreamName="s", Records=entries))
    last = answers[-1]
    throttled = [r for r in last["Records"] if r.get("ErrorCode") == THROTTLED]
    assert throttled and last["FailedRecordCount"] == len(throttled)
    assert "Rate exceeded for shard" in throttled[0]["ErrorMessage"]
    # The admitted entries come first (the bucket ran dry part-way), each with its sequence number.
    first_failure = next(i for i, r in enumerate(last["Records"]) if "ErrorCode" in r)
    assert all("SequenceNumber" in r for r in last["Records"][:first_failure])
    accepted = sum(500 - a["FailedRecordCount"] for a in answers)
    assert len(_read_all(kinesis, "s")) == accepted


@pytest.mark.integration
def test_put_record_over_the_byte_limit_is_rejected_with_a_400(cloud: LocalCloud) -> None:
    kinesis = _raw_kinesis(cloud)
    kinesis.create_stream(StreamName="big", ShardCount=2)
    kinesis.put_record(StreamName="big", Data=b"y" * 900_000, PartitionKey="p")
    with pytest.raises(ClientError) as caught:
        kinesis.put_record(StreamName="big", Data=b"y" * 900_000, PartitionKey="p")
    assert caught.value.response["Error"]["Code"] == THROTTLED
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # Another partition key that hashes to the other shard still gets through.
    other = next(
        str(k) for k in range(100) if _shard_of(kinesis, "big", str(k)) != _shard_of(kinesis, "big", "p")
    )
    kinesis.put_record(StreamName="big", Data=b"y" * 900_000, PartitionKey=other)


def _shard_of(kinesis: Any, stream: str, key: str) -> str:
    import hashlib  # noqa: PLC0415

    value = int(hashlib.md5(key.encode()).hexdigest(), 16)
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        low, high = int(shard["HashKeyRange"]["StartingHashKey"]), int(shard["HashKeyRange"]["EndingHashKey"])
        if low <= value <= high:
            return str(shard["ShardId"])
    raise AssertionError(key)


@pytest.mark.integration
def test_put_records_merges_throttled_and_accepted_entries_in_request_order(cloud: LocalCloud) -> None:
    # Given two shards, one of them with its byte budget spent
    kinesis = _raw_kinesis(cloud)
    kinesis.create_stream(StreamName="two", ShardCount=2)
    hot = "p"
    cold = next(
        str(k) for k in range(100) if _shard_of(kinesis, "two", str(k)) != _shard_of(kinesis, "two", hot)
    )
    kinesis.put_record(StreamName="two", Data=b"h" * 1_000_000, PartitionKey=hot)
    # When one call interleaves large entries for the hot shard with small ones for the other
    # (each hot entry needs almost a second of refill: slow calls cannot let one through)
    entries = [
        {"Data": b"H" * 1_000_000, "PartitionKey": hot}
        if i % 2 == 0
        else {"Data": b"c%d" % i, "PartitionKey": cold}
        for i in range(8)
    ]
    answer = kinesis.put_records(StreamName="two", Records=entries)
    # Then each result sits at its entry's position
    assert answer["FailedRecordCount"] == 4
    for i, result in enumerate(answer["Records"]):
        if i % 2 == 0:
            assert result["ErrorCode"] == THROTTLED
        else:
            assert result["ShardId"] == _shard_of(kinesis, "two", cold) and "SequenceNumber" in result
    stored = _read_all(kinesis, "two", _shard_of(kinesis, "two", cold))
    assert [r["Data"] for r in stored] == [b"c%d" % i for i in range(1, 8, 2)]


@pytest.mark.integration
def test_more_than_five_get_records_per_second_are_throttled(cloud: LocalCloud) -> None:
    kinesis = _raw_kinesis(cloud)
    kinesis.create_stream(StreamName="r", ShardCount=1)
    kinesis.put_record(StreamName="r", Data=b"z", PartitionKey="k")
    iterator = kinesis.get_shard_iterator(StreamName="r", ShardId=SHARD, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    codes: list[str] = []
    while len(codes) < 30 and THROTTLED not in codes:
        try:
            kinesis.get_records(ShardIterator=iterator)
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    # The shard's five calls of the first second pass; calls beyond its rate are refused.
    assert codes[:5] == ["ok"] * 5
    assert codes[-1] == THROTTLED
    time.sleep(1.0)  # a second later the shard serves reads again
    kinesis.get_records(ShardIterator=iterator)


def test_token_bucket_refills_to_one_second_and_reads_can_overdraw() -> None:
    now = [0.0]
    bucket = TokenBucket(5.0, clock=lambda: now[0])
    assert bucket.refill() == 5.0
    bucket.tokens -= 5
    now[0] = 0.4
    assert bucket.refill() == pytest.approx(2.0)
    now[0] = 10.0
    assert bucket.refill() == 5.0  # never more than one second's worth

    limits = ShardLimits(settings=ShardLimitSettings(read_bytes_per_s=100.0), clock=lambda: now[0])
    assert limits.settings.read_calls_per_s == 5.0
