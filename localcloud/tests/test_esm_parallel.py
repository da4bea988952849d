"""ParallelizationFactor and resharding: concurrency per shard, per-key order, parents before children."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import pytest
from esm_support import (
    Aws,
    EngineFactory,
    RecordingInvoker,
    aws,
    data_of,
    invoker,
    make_engine,
    moto_endpoint,
)
from localcloud.esm.worker import substream_of

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _per_key_order(records: list[dict[str, Any]]) -> dict[str, list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for record in records:
        body = data_of(record)
        seen[body["key"]].append(body["i"])
    return seen


def test_parallelization_factor_runs_batches_concurrently_and_keeps_key_order(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given one shard, 8 keys with 20 records each, ParallelizationFactor 4, a slow handler
    name, *_ = aws.function()
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(event: dict[str, Any]) -> None:
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        time.sleep(0.02)
        with lock:
            active["now"] -= 1

    invoker.register(name, handler)
    stream, stream_arn = aws.stream()
    items = [(f"key-{k}", {"key": f"key-{k}", "i": i}) for i in range(20) for k in range(8)]
    seqs = aws.put_many(stream, items)
    aws.mapping(name, stream_arn, ParallelizationFactor=4, BatchSize=5)
    engine = make_engine()
    assert engine.wait_until_idle(20)
    # Then batches overlapped in time
    calls = invoker.calls_for(name)
    overlaps = sum(1 for a in calls for b in calls if a is not b and a.started < b.started < a.ended)
    assert active["max"] > 1 and overlaps > 0
    # And each key arrived complete and in order, always within one sub-stream's batches
    order = _per_key_order(invoker.delivered(name))
    assert order == {f"key-{k}": list(range(20)) for k in range(8)}
    assert active["max"] <= 4
    # And the checkpoint reached the last record only once every sub-batch succeeded
    [stats] = engine.stats()
    assert stats.checkpoint == seqs[-1]
    assert stats.records == len(items)


def test_checkpoint_waits_for_the_slowest_sub_stream(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given two keys in different sub-streams; the first record's key keeps failing for a while
    assert substream_of("slow", 10) != substream_of("fast", 10)
    name, *_ = aws.function()
    engines: list[Any] = []
    seen: list[str | None] = []
    fast_done = threading.Event()

    def handler(event: dict[str, Any]) -> None:
        keys = {data_of(r)["key"] for r in event["Records"]}
        if "fast" in keys:
            fast_done.set()
            return
        if not fast_done.is_set() or len(seen) < 3:
            if fast_done.is_set() and engines:
                # While the first record is unresolved the checkpoint must not move past it
                seen.append(engines[0].stats()[0].checkpoint)
            raise RuntimeError("transient")

    invoker.register(name, handler)
    stream, stream_arn = aws.stream()
    seqs = aws.put_many(
        stream, [("slow", {"key": "slow", "i": 0})] + [("fast", {"key": "fast", "i": i}) for i in range(5)]
    )
    aws.mapping(name, stream_arn, ParallelizationFactor=10, BatchSize=10)
    engines.append(make_engine())
    assert engines[0].wait_until_idle(20)
    assert seen == [None, None, None]
    [stats] = engines[0].stats()
    assert stats.checkpoint == seqs[-1]
    assert sorted((data_of(r)["key"], data_of(r)["i"]) for r in invoker.delivered(name)) == sorted(
        [("slow", 0)] + [("fast", i) for i in range(5)]
    )


def test_update_shard_count_mid_stream_loses_nothing_and_reads_parent_before_children(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a stream being written per key while it is resharded from 1 to 2 shards (a slow
    # handler, so that children started too early would interleave with the parent)
    name, *_ = aws.function()
    invoker.register(name, lambda event: time.sleep(0.03))
    stream, stream_arn = aws.stream(shards=1)
    aws.mapping(name, stream_arn, BatchSize=7)
    engine = make_engine()
    keys = [f"key-{k}" for k in range(6)]
    aws.put_many(stream, [(k, {"key": k, "i": i}) for i in range(10) for k in keys])
    aws.client("kinesis").update_shard_count(
        StreamName=stream, TargetShardCount=2, ScalingType="UNIFORM_SCALING"
    )
    aws.put_many(stream, [(k, {"key": k, "i": i}) for i in range(10, 20) for k in keys])
    assert engine.wait_until_idle(20)
    # Then every record is delivered once and each key in order
    records = invoker.delivered(name)
    assert _per_key_order(records) == {k: list(range(20)) for k in keys}
    shards = [r["eventID"].split(":")[0] for r in records]
    assert set(shards) == {"shardId-000000000000", "shardId-000000000001", "shardId-000000000002"}
    # And the parent was read to its end before any child record
    last_parent = max(i for i, s in enumerate(shards) if s == "shardId-000000000000")
    first_child = min(i for i, s in enumerate(shards) if s != "shardId-000000000000")
    assert last_parent < first_child
    states = {s.shard_id: s.state for s in engine.stats()}
    assert states["shardId-000000000000"] == "finished"


def test_merged_shards_are_read_after_both_parents(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: time.sleep(0.03))
    stream, stream_arn = aws.stream(shards=2)
    aws.mapping(name, stream_arn, BatchSize=3)
    keys = [f"key-{k}" for k in range(6)]
    aws.put_many(stream, [(k, {"key": k, "i": i}) for i in range(5) for k in keys])
    aws.client("kinesis").merge_shards(
        StreamName=stream, ShardToMerge="shardId-000000000000", AdjacentShardToMerge="shardId-000000000001"
    )
    aws.put_many(stream, [(k, {"key": k, "i": i}) for i in range(5, 10) for k in keys])
    engine = make_engine()
    assert engine.wait_until_idle(20)
    records = invoker.delivered(name)
    assert _per_key_order(records) == {k: list(range(10)) for k in keys}
    shards = [r["eventID"].split(":")[0] for r in records]
    first_child = shards.index("shardId-000000000002")
    assert {"shardId-000000000000", "shardId-000000000001"} == set(shards[:first_child])
    assert set(shards[first_child:]) == {"shardId-000000000002"}


def test_a_shard_ending_closes_its_window_and_children_start_fresh(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        state = dict(event["state"])
        if not event["isFinalInvokeForWindow"]:
            state["n"] = state.get("n", 0) + len(event["Records"])
        return {"state": state}

    invoker.register(name, handler)
    stream, stream_arn = aws.stream(shards=1)
    # A long window: only the shard's end (not time) can close the parent's window here
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=900)
    aws.put_many(stream, [(f"k{i}", {"key": f"k{i}", "i": i}) for i in range(6)])
    aws.client("kinesis").update_shard_count(
        StreamName=stream, TargetShardCount=2, ScalingType="UNIFORM_SCALING"
    )
    aws.put_many(stream, [(f"k{i}", {"key": f"k{i}", "i": i}) for i in range(6, 12)])
    engine = make_engine()
    assert engine.wait_until_idle(20)
    calls = invoker.calls_for(name)
    parent_final = [
        c for c in calls if c.event["shardId"] == "shardId-000000000000" and c.event["isFinalInvokeForWindow"]
    ]
    assert len(parent_final) == 1 and parent_final[0].event["state"] == {"n": 6}
    for child in ("shardId-000000000001", "shardId-000000000002"):
        child_calls = [c for c in calls if c.event["shardId"] == child]
        if child_calls:
            assert child_calls[0].event["state"] == {}
    assert sum(len(c.records) for c in calls) == 12
