"""Polling cadence: a shard is read at AWS's base rate while records trickle in, never faster.

AWS reads a Kinesis shard once a second and a DynamoDB stream four times a second, reading again at
once only while records remain behind the last read. With records arriving steadily and a function
that finishes quickly, a mapping therefore makes about one invocation per base interval, each
carrying what arrived since the last read, not one per finished batch.

The bounds below are upper bounds on how many reads (and so invocations) a stretch of time holds: a
busy machine only makes reads rarer, so they hold however slow the machine is.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from esm_support import (
    FAST,
    Aws,
    EngineFactory,
    RecordingInvoker,
    aws,
    invoker,
    make_engine,
    moto_endpoint,
    wait_for,
)
from localcloud.esm import EngineSettings

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

# A base interval long against the handler's time, short enough to keep the tests quick.
INTERVAL_S = 0.5
CADENCE = EngineSettings(
    sync_interval_s=FAST.sync_interval_s,
    shard_refresh_interval_s=FAST.shard_refresh_interval_s,
    kinesis_poll_interval_s=INTERVAL_S,
    dynamodb_poll_interval_s=INTERVAL_S,
    window_idle_wait_s=FAST.window_idle_wait_s,
    error_backoff_s=FAST.error_backoff_s,
    error_backoff_max_s=FAST.error_backoff_max_s,
    retry_backoff_s=FAST.retry_backoff_s,
    retry_backoff_max_s=FAST.retry_backoff_max_s,
    throttle_backoff_s=FAST.throttle_backoff_s,
    throttle_backoff_max_s=FAST.throttle_backoff_max_s,
)
TRICKLE_S = 3.0
TRICKLE_EVERY_S = 0.02


def _slow_handler(event: dict[str, object]) -> None:
    # Records keep arriving while a batch runs: an engine that reads whenever a batch finishes
    # would find some each time and invoke again at once.
    time.sleep(0.03)


def _trickle(put: Callable[[int], None]) -> int:
    """Put one record every ``TRICKLE_EVERY_S`` for ``TRICKLE_S``; returns how many were put."""
    count = 0
    end = time.monotonic() + TRICKLE_S
    while time.monotonic() < end:
        put(count)
        count += 1
        time.sleep(TRICKLE_EVERY_S)
    return count


def _assert_base_rate(invoker: RecordingInvoker, name: str) -> None:
    calls = invoker.calls_for(name)
    span = calls[-1].started - calls[0].started
    # One read per interval over the span, plus the reads at both ends, plus one read that found
    # records behind it (a read returns at most what was there when it ran).
    allowed = int(span / INTERVAL_S) + 3
    assert len(calls) <= allowed, (
        f"{len(calls)} invocations in {span:.2f} s: reads faster than one per {INTERVAL_S} s"
    )


def test_kinesis_shard_is_read_at_the_base_rate_while_records_trickle_in(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a mapping with a large batch size on a stream that receives a record every 20 ms
    name, *_ = aws.function()
    invoker.register(name, _slow_handler)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, BatchSize=1000)
    make_engine(CADENCE)
    sent = _trickle(lambda i: aws.put(stream, {"n": i}))
    # When every record has been delivered
    assert wait_for(lambda: len(invoker.delivered(name)) == sent, timeout=20)
    # Then the invocations came at most once per base interval
    _assert_base_rate(invoker, name)


def test_dynamodb_stream_is_read_at_the_base_rate_while_items_trickle_in(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a mapping on a table stream whose table gets an item every 20 ms
    name, *_ = aws.function()
    invoker.register(name, _slow_handler)
    table, stream_arn = aws.table()
    aws.mapping(name, stream_arn, BatchSize=1000)
    make_engine(CADENCE)
    ddb = aws.client("dynamodb")
    sent = _trickle(lambda i: ddb.put_item(TableName=table, Item={"pk": {"S": f"item-{i}"}}))
    # When every change has been delivered
    assert wait_for(lambda: len(invoker.delivered(name)) == sent, timeout=20)
    # Then the invocations came at most once per base interval
    _assert_base_rate(invoker, name)
