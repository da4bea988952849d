"""Tumbling windows on Kinesis: state, bounds, final invocations, early termination, persistence."""

from __future__ import annotations

import itertools
import re
import time
from collections import defaultdict
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

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _epoch(iso: str) -> float:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def _align(window: int, margin: float = 0.05) -> None:
    """Sleep until just after the next window boundary, so records put now share one window."""
    now = time.time()
    time.sleep(window - (now % window) + margin)


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
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=1)
    _align(1)
    aws.put(stream, {"n": 0})
    aws.put(stream, {"n": 1})
    _align(1)
    aws.put(stream, {"n": 2})
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
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=2, BatchSize=2)
    _align(2)
    aws.put_many(stream, [("k", {"n": i}) for i in range(4)])
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
    # Given a 3 s window and a first engine that processes part of it
    name, *_ = aws.function()
    invoker.register(name, counting_handler)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, TumblingWindowInSeconds=3)
    _align(3)
    aws.put_many(stream, [("k", {"n": i}) for i in range(3)])
    first = make_engine(state_dir=tmp_path / "s")
    assert first.wait_until_idle(5)
    first.stop()
    # When a new engine with the same state directory takes over within the window
    aws.put_many(stream, [("k", {"n": i}) for i in range(3, 5)])
    second = make_engine(state_dir=tmp_path / "s")
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
