"""Resharding mid-race: UpdateShardCount 1 → 2 → 1 while a race streams in.

The mapping must read each parent to its end before its children (and both parents of the merge
before the merged shard), so a racer's seconds are neither skipped at a shard boundary nor counted
twice when they sit on both sides of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcloud.faults import FaultInjector

from alleycat.stack import LocalStack
from tests.faults.support import (
    assert_standings_match,
    drain,
    messages_of,
    outputs,
    plan,
    running_stack,
    send,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-resharding")]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, FaultInjector]]:
    with running_stack(Path(tmp_path_factory.mktemp("faults-resharding")), seed=17) as running:
        yield running


def _aggregated_records(stack: LocalStack, stream_arn: str) -> dict[str, int]:
    assert stack.cloud is not None
    return {
        s.shard_id: s.records for s in stack.cloud.mapping_engine.stats() if s.event_source_arn == stream_arn
    }


def _spread_base(races: int) -> int:
    """A raceId base (from the time-derived one on) whose consecutive ids — the partition keys —
    hash into both halves of the key space, so both children of the split receive records."""
    base = plan(1, 1, seed=301)[0].race_id
    while True:
        halves = {int(hashlib.md5(str(base + i).encode()).hexdigest(), 16) >> 127 for i in range(races)}
        if halves == {0, 1}:
            return base
        base += races


def _reshard(kinesis: Any, stream: str, target: int) -> None:
    kinesis.update_shard_count(StreamName=stream, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
    wait_until(
        lambda: (
            kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
            == "ACTIVE"
        ),
        30,
        "the stream to be ACTIVE again",
    )


def test_split_and_merge_mid_race_keep_exact_standings(cloud: tuple[LocalStack, FaultInjector]) -> None:
    """Given four races (their partition keys spread over both children) sent in thirds, with the
    stream split to two shards after the first third and merged back to one after the second,
    every shard is consumed and the standings are exact."""
    stack, _ = cloud
    assert stack.cloud is not None
    kinesis = stack.cloud.client("kinesis")
    stream = outputs(stack)["StreamName"]
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamARN"]
    specs = plan(100, 15, seed=301, classes=(1, 2, 3, 4), race_id_base=_spread_base(4))
    # The races run side by side: every third of the sending holds seconds of all four races.
    messages = sorted(messages_of(specs), key=lambda m: m["second"])
    third = len(messages) // 3

    send(stack, messages[:third])
    # Mid-race: the parent is being consumed (some windows merged) when it is closed.
    wait_until(lambda: sum(_aggregated_records(stack, stream_arn).values()) > 0, 30, "the first records")
    _reshard(kinesis, stream, 2)
    send(stack, messages[third : 2 * third])
    _reshard(kinesis, stream, 1)
    send(stack, messages[2 * third :])
    drain(stack)

    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    assert len(shards) == 4  # the parent, two children, the merged shard
    consumed = _aggregated_records(stack, stream_arn)
    assert sum(consumed.values()) == len(messages)
    # Both children carried records, so the split really spread the races.
    children = [s["ShardId"] for s in shards if s.get("ParentShardId") == shards[0]["ShardId"]]
    assert all(consumed.get(child, 0) > 0 for child in children), consumed
    assert_standings_match(stack, specs, messages)
