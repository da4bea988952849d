"""Tumbling windows on Kinesis: state, bounds, final invocations, early termination, persistence."""

from __future__ import annotations

import itertools
import re
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes import KinesisStreamEvent
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel
from esm_support import (
    Aws,
    Call,
    EngineFactory,
    RecordingInvoker,
    aws,
    data_of,
    invoker,
    make_engine,
    moto_endpoint,
    wait_for,
)
from localcloud.esm.windows import window_start

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _align(window: int, margin: float = 0.05) -> None:
    """Sleep until just after the next window boundary, so records put now likely share one window."""
    now = time.time()
    time.sleep(window - (now % window) + margin)


def _arrival_windows(aws: Aws, stream: str, window: int) -> list[int]:
    """The tumbling window each record on the stream's one shard arrived in, in stream order."""
    kinesis = aws.client("kinesis")
    iterator = kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000", ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
    return [window_start(r["ApproximateArrivalTimestamp"].timestamp(), window) for r in records]


def _stream_with_windows(
    aws: Aws, window: int, groups: list[list[int]], then: Callable[[str, str], None] | None = None
) -> tuple[str, str]:
    """A fresh stream holding each group of records (``{"n": n}``) in a tumbling window of its own.

    Each group is put just after a window boundary, and the arrival times the stream gave the records
    are checked: on a machine busy enough that a group straddles a boundary, the scenario starts again
    on a fresh stream (a bounded number of times), so the tests never depend on timing luck.
    ``then(stream, arn)`` runs after the first group (e.g. to start an engine) and before the rest.
    """
    sizes = [len(group) for group in groups]
    for _attempt in range(6):
        stream, stream_arn = aws.stream()
        for index, group in enumerate(groups):
            if index == 0 or then is None:
                _align(window)
            aws.put_many(stream, [("k", {"n": n}) for n in group])
            if index == 0 and then is not None:
                then(stream, stream_arn)
        arrived = _arrival_windows(aws, stream, window)
        per_group, start = [], 0
        for size in sizes:
            per_group.append(set(arrived[start : start + size]))
            start += size
        if all(len(w) == 1 for w in per_group):
            firsts = [min(w) for w in per_group]
            wanted_same = then is not None  # the groups around `then` share one window
            if (wanted_same and len(set(firsts)) == 1) or (not wanted_same and firsts == sorted(set(firsts))):
                return stream, stream_arn
    raise AssertionError(f"could not place {sizes} records in windows of {window} s in six tries")


def counting_handler(event: dict[str, Any]) -> dict[str, Any]:
    """Counts records and sums n per window; the final invocation just acknowledges."""
    state = dict(event.get("state") or {})
    if event.get("isFinalInvokeForWindow"):
        return {"state": state}
    state["count"] = state.get("count", 0) + len(event["Records"])
    state["ns"] = [*state.get("ns", []), *[data_of(r)["n"] for r in event["Records"]]]
    return {"state": state}


def _finals(calls: list[Call]) -> list[Call]:
    return [c for c in calls if c.event.get("isFinalInvokeForWindow")]


def test_steady_stream_accumulates_state_and_closes_each_window_once(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a 1 s tumbling window over a steady stream, small batches
    name, *_ = aws.function()
    invoker.register(name, counting_handler)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1, BatchSize=5)
    engine = make_engine()
    arrivals: dict[int, float] = {}
    n = 0
    end = time.time() + 2.5
    while time.time() < end:
        aws.put(stream, {"n": n})
        n += 1
        time.sleep(0.03)
    assert engine.wait_until_idle(15, include_windows=True)
    calls = invoker.calls_for(name)
    for call in calls:
        for record in call.records:
            arrivals[data_of(record)["n"]] = record["kinesis"]["approximateArrivalTimestamp"]
    # Every record was aggregated exactly once
    finals = _finals(calls)
    aggregated = [x for f in finals for x in f.event["state"]["ns"]]
    assert sorted(aggregated) == list(range(n))
    # Exactly one final invocation per window per shard, with aligned bounds
    starts = [f.event["window"]["start"] for f in finals]
    assert len(starts) == len(set(starts)) >= 3
    by_window: dict[str, list[Call]] = defaultdict(list)
    for call in calls:
        assert ISO_SECONDS.match(call.event["window"]["start"])
        assert ISO_SECONDS.match(call.event["window"]["end"])
        assert _epoch(call.event["window"]["end"]) - _epoch(call.event["window"]["start"]) == 1
        assert call.event["shardId"] == "shardId-000000000000"
        assert call.event["eventSourceARN"] == stream_arn
        assert call.event["isWindowTerminatedEarly"] is False
        by_window[call.event["window"]["start"]].append(call)
        KinesisDataStreamModel.model_validate(call.event)
        assert KinesisStreamEvent(call.event).window is not None
    for start, window_calls in by_window.items():
        # The first invocation of a window gets an empty state, later ones the accumulated state
        assert window_calls[0].event["state"] == {}
        assert len(window_calls) >= 2
        final = window_calls[-1]
        assert final.event["isFinalInvokeForWindow"] is True
        assert final.event["Records"] == []
        assert all(not c.event["isFinalInvokeForWindow"] for c in window_calls[:-1])
        # The window holds exactly the records whose arrival falls inside it
        lo = _epoch(start)
        inside = sorted(k for k, t in arrivals.items() if lo <= t < lo + 1)
        assert sorted(final.event["state"]["ns"]) == inside
        # State accumulates across invocations
        for earlier, later in itertools.pairwise(window_calls):
            assert later.event["state"]["count"] == earlier.event["state"].get("count", 0) + len(
                earlier.records
            )
    stats = engine.stats()[0]
    assert stats.window_final_invocations == len(finals)


def test_window_closes_when_over_even_without_new_records(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    invoker.register(name, counting_handler)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1)
    engine = make_engine()
    aws.put(stream, {"n": 0})
    # The window ends within 1 s, the idle wait is 0.3 s in tests
    assert wait_for(lambda: len(_finals(invoker.calls_for(name))) == 1, timeout=5)
    assert engine.wait_until_idle(5, include_windows=True)
    [final] = _finals(invoker.calls_for(name))
    assert final.event["state"]["ns"] == [0]


def test_failing_final_invocation_blocks_the_shard_until_it_succeeds(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a handler whose first two final invocations fail
    name, *_ = aws.function()
    failures = {"left": 2}

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        if event["isFinalInvokeForWindow"] and failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("final failed")
        return counting_handler(event)

    invoker.register(name, handler)
    # Records 0 and 1 in one window, record 2 in a later one
    _stream, stream_arn = _stream_with_windows(aws, 1, [[0, 1], [2]])
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1)
    engine = make_engine()
    assert engine.wait_until_idle(15, include_windows=True)
    calls = invoker.calls_for(name)
    kinds = [
        ("final" if c.event["isFinalInvokeForWindow"] else "records", c.result is not None and c.result.ok)
        for c in calls
    ]
    # Then the next window's records wait until the final invocation succeeded (with the same state)
    assert kinds == [
        ("records", True),
        ("final", False),
        ("final", False),
        ("final", True),
        ("records", True),
        ("final", True),
    ]
    assert calls[1].event["state"] == calls[3].event["state"] == {"count": 2, "ns": [0, 1]}
    assert calls[4].event["state"] == {}


def test_response_without_state_is_a_failed_invocation(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    answers: list[Any] = [None, {"result": "no state"}]

    def handler(event: dict[str, Any]) -> Any:
        if answers and not event["isFinalInvokeForWindow"]:
            return answers.pop(0)
        return counting_handler(event)

    invoker.register(name, handler)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1)
    aws.put(stream, {"n": 0})
    engine = make_engine()
    assert engine.wait_until_idle(10, include_windows=True)
    calls = invoker.calls_for(name)
    record_calls = [c for c in calls if not c.event["isFinalInvokeForWindow"]]
    assert len(record_calls) == 3
    assert all(c.event["state"] == {} for c in record_calls)
    assert _finals(calls)[0].event["state"]["ns"] == [0]
    assert engine.stats()[0].retries == 2


def test_state_over_one_megabyte_terminates_the_window_early(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a handler whose state exceeds 1 MB after the first batch
    name, *_ = aws.function()

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        result = counting_handler(event)
        if not event["isFinalInvokeForWindow"] and 0 in result["state"]["ns"]:
            result["state"]["blob"] = "x" * (1024 * 1024 + 10)
        return result

    invoker.register(name, handler)
    _stream, stream_arn = _stream_with_windows(aws, 2, [[0, 1, 2, 3]])
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=2, BatchSize=2)
    engine = make_engine()
    assert engine.wait_until_idle(15, include_windows=True)
    calls = invoker.calls_for(name)
    shape = [
        (
            c.event["isFinalInvokeForWindow"],
            c.event["isWindowTerminatedEarly"],
            [data_of(r)["n"] for r in c.records],
        )
        for c in calls
    ]
    # Then: batch, early final (with the oversized state), then the same window continues with fresh state
    assert shape == [(False, False, [0, 1]), (True, True, []), (False, False, [2, 3]), (True, False, [])]
    assert len(calls[1].event["state"]["blob"]) > 1024 * 1024
    assert calls[2].event["state"] == {}
    assert calls[2].event["window"] == calls[0].event["window"]
    assert calls[3].event["state"]["ns"] == [2, 3]


def test_open_window_state_survives_an_engine_restart(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory, tmp_path: Any
) -> None:
    # Given a 3 s window and a first engine that processes part of it (and stops) within the window
    tries: list[tuple[str, str, Any]] = []  # (function, mapping, state folder) of each try

    def first_engine(stream: str, stream_arn: str) -> None:
        if tries:  # the previous try's records straddled a window edge: retire its mapping
            aws.client("lambda").delete_event_source_mapping(UUID=tries[-1][1])
        name, *_ = aws.function()
        invoker.register(name, counting_handler)
        uuid = aws.mapping(name, stream_arn, TumblingWindowInSeconds=3)["UUID"]
        tries.append((name, uuid, tmp_path / f"s{len(tries)}"))
        first = make_engine(state_dir=tries[-1][2])
        assert first.wait_until_idle(5)
        first.stop()

    # When a new engine with the same state directory takes over, records 3 and 4 in the same window
    _stream_with_windows(aws, 3, [[0, 1, 2], [3, 4]], then=first_engine)
    name, _uuid, state_dir = tries[-1]
    second = make_engine(state_dir=state_dir)
    assert second.wait_until_idle(15, include_windows=True)
    # Then the state carried on and the single final invocation has all five records
    finals = _finals(invoker.calls_for(name))
    assert [f.event["state"]["ns"] for f in finals] == [[0, 1, 2, 3, 4]]


def test_final_invocation_that_never_succeeds_goes_to_the_destination_after_retries(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a final invocation that always fails, one retry, an SQS destination
    name, fn_arn, _ = aws.function()

    def handler(event: dict[str, Any]) -> dict[str, Any]:
        if event["isFinalInvokeForWindow"]:
            raise RuntimeError("cannot flush")
        return counting_handler(event)

    invoker.register(name, handler)
    stream, stream_arn = aws.stream()
    dlq_url, dlq_arn = aws.queue()
    aws.mapping(
        name,
        stream_arn,
        TumblingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    seqs = aws.put_many(stream, [("k", {"n": i}) for i in range(3)])
    engine = make_engine()
    assert engine.wait_until_idle(10, include_windows=True)
    finals = _finals(invoker.calls_for(name))
    assert len(finals) == 2
    [failure] = aws.drain_queue(dlq_url, 1)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["requestContext"]["functionArn"] == fn_arn
    info = failure["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (seqs[0], seqs[2])
    assert info["batchSize"] == 3
    # And the shard moves on
    aws.put(stream, {"n": 3})
    assert engine.wait_until_idle(10)
    assert 3 in [data_of(r)["n"] for c in invoker.calls_for(name) for r in c.records]


def test_batching_window_does_not_hold_back_a_window_whose_end_was_read(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given records in two consecutive 1 s windows, read by a mapping that would gather a batch for
    # up to 30 s
    name, *_ = aws.function()
    invoker.register(name, counting_handler)
    _, stream_arn = _stream_with_windows(aws, 1, [[0, 1, 2], [3]])
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1, BatchSize=100, MaximumBatchingWindowInSeconds=30)
    # When the engine reads them
    make_engine()
    # Then the first window's batch is cut at its end and the window closes, long before the
    # batching window could have run out (a batch never spans two windows: it cannot grow)
    assert wait_for(lambda: len(_finals(invoker.calls_for(name))) >= 1, timeout=15)
    first = _finals(invoker.calls_for(name))[0]
    assert first.event["state"]["ns"] == [0, 1, 2]
