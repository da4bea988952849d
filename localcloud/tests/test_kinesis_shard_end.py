"""Kinesis resharding as a reader sees it: ListShards names parents, GetRecords ends a closed shard.

Kinesis answers GetRecords at the end of a closed (split or merged) shard without a
NextShardIterator and with ChildShards: each child's id, its parent shards and its hash range. A
reader that follows the protocol (the Kinesis Client Library checks that a missing iterator comes
with child shards, and the reverse) relies on both to finish a parent and start its children.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from localcloud import LocalCloud

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def kinesis() -> Iterator[Any]:
    with LocalCloud(metrics=False, shard_limits=False) as cloud:
        yield boto3.client(
            "kinesis",
            endpoint_url=cloud.endpoint_url,
            region_name=cloud.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def _read_to_end(kinesis: Any, stream: str, shard_id: str) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Every record of the shard and the answers, until an answer has no NextShardIterator (or is
    empty for an open shard)."""
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    data: list[bytes] = []
    answers: list[dict[str, Any]] = []
    for _ in range(100):
        answer = kinesis.get_records(ShardIterator=iterator, Limit=3)
        answers.append(answer)
        data += [r["Data"] for r in answer["Records"]]
        iterator = answer.get("NextShardIterator")
        if iterator is None or not answer["Records"]:
            return data, answers
    raise AssertionError("the shard never ended")


def _put(kinesis: Any, stream: str, keys: range) -> None:
    for key in keys:
        kinesis.put_record(StreamName=stream, Data=str(key).encode(), PartitionKey=str(key))


def _shards(kinesis: Any, stream: str) -> dict[str, dict[str, Any]]:
    return {s["ShardId"]: s for s in kinesis.list_shards(StreamName=stream)["Shards"]}


def test_a_split_parent_read_to_its_end_names_its_children(kinesis: Any) -> None:
    # Given a one-shard stream with 10 records, split in two by UpdateShardCount, then 10 more records
    kinesis.create_stream(StreamName="split", ShardCount=1)
    _put(kinesis, "split", range(10))
    kinesis.update_shard_count(StreamName="split", TargetShardCount=2, ScalingType="UNIFORM_SCALING")
    _put(kinesis, "split", range(10, 20))
    shards = _shards(kinesis, "split")
    parent = "shardId-000000000000"
    children = sorted(s for s, shard in shards.items() if shard.get("ParentShardId") == parent)
    # Then ListShards names the parent of both children, and the parent is closed
    assert len(children) == 2
    assert "EndingSequenceNumber" in shards[parent]["SequenceNumberRange"]

    # When the parent is read from its start
    data, answers = _read_to_end(kinesis, "split", parent)
    # Then it holds exactly the records put before the split, and its last answer ends it
    assert sorted(int(d) for d in data) == list(range(10))
    last = answers[-1]
    assert "NextShardIterator" not in last
    assert last["MillisBehindLatest"] == 0
    assert [c["ShardId"] for c in last["ChildShards"]] == children
    for child in last["ChildShards"]:
        assert child["ParentShards"] == [parent]
        assert child["HashKeyRange"] == shards[child["ShardId"]]["HashKeyRange"]
    # ... and every answer before the end had an iterator and no children
    assert all("NextShardIterator" in a and not a.get("ChildShards") for a in answers[:-1])


def test_open_shards_never_end_and_both_parents_of_a_merge_name_the_merged_shard(kinesis: Any) -> None:
    # Given a two-shard stream with records, merged back into one shard
    kinesis.create_stream(StreamName="merge", ShardCount=2)
    _put(kinesis, "merge", range(20))
    # While the shards are open, a read to the tip keeps an iterator and names no children
    for shard_id in _shards(kinesis, "merge"):
        _, answers = _read_to_end(kinesis, "merge", shard_id)
        assert all(a.get("NextShardIterator") and not a.get("ChildShards") for a in answers)
    kinesis.update_shard_count(StreamName="merge", TargetShardCount=1, ScalingType="UNIFORM_SCALING")
    shards = _shards(kinesis, "merge")
    (merged,) = [s for s, shard in shards.items() if "AdjacentParentShardId" in shard]
    parents = [shards[merged]["ParentShardId"], shards[merged]["AdjacentParentShardId"]]
    # When each parent is read to its end
    total: list[bytes] = []
    for parent in parents:
        data, answers = _read_to_end(kinesis, "merge", parent)
        total += data
        # Then its last answer names the merged shard, with both its parents
        assert "NextShardIterator" not in answers[-1]
        assert answers[-1]["ChildShards"] == [
            {"ShardId": merged, "ParentShards": parents, "HashKeyRange": shards[merged]["HashKeyRange"]}
        ]
    assert sorted(int(d) for d in total) == list(range(20))
    # ... and the merged (open) shard does not end
    _put(kinesis, "merge", range(20, 23))
    data, answers = _read_to_end(kinesis, "merge", merged)
    assert sorted(int(d) for d in data) == [20, 21, 22]
    assert "NextShardIterator" in answers[-1]
