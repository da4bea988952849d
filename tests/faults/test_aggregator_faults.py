"""Faults behind the aggregator: it crashes mid-window (an exception, and kill -9), and DynamoDB
throttles it for longer than an invocation. (DynamoDB throttling that the retries absorb applies to
any consumer, so it lives with the other consumer-agnostic faults in test_ingest_faults.py.)

Lambda's contract is at-least-once: a failed window invocation is retried with the window's state,
so the merge may run again over buckets it already wrote. The bitmaps of counted seconds and the
version-conditioned puts must make that retry land exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud.faults import ErrorResponse, FaultInjector, Latency, kill_processes

from alleycat.stack import LocalStack
from tests.faults.support import (
    AGGREGATOR,
    assert_standings_match,
    drain,
    function_name,
    mapping_errors,
    messages_of,
    plan,
    running_stack,
    send,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("faults-aggregator")]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, FaultInjector]]:
    with running_stack(Path(tmp_path_factory.mktemp("faults-aggregator")), seed=13) as running:
        yield running


def test_merge_that_raises_is_retried_to_exact_standings(cloud: tuple[LocalStack, FaultInjector]) -> None:
    """Given the race summary's conditional put throttled (RequestLimitExceeded) until a window's
    merge has raised — the SDK retries each call, the store retries the call, then gives up, which
    takes about half a minute — the buckets are written but the summary is not; the retried
    window heals it."""
    stack, injector = cloud
    specs = plan(100, 12, seed=201)
    messages = messages_of(specs)
    errors_before = mapping_errors(stack)
    rule = ErrorResponse(
        "dynamodb",
        {"PutItem"},
        code="RequestLimitExceeded",
        message="Throughput exceeds the current throughput limit for your account.",
        body_contains='"META"',  # the race summary item: the merge's last write
    )
    with injector.active(rule):
        send(stack, messages)
        wait_until(lambda: mapping_errors(stack) > errors_before, 90, "a window merge to raise")
    assert rule.injected >= 8  # every attempt of the store's retries failed
    drain(stack)
    assert_standings_match(stack, specs, messages)


def test_worker_killed_mid_merge_recovers_exact_standings(cloud: tuple[LocalStack, FaultInjector]) -> None:
    """Given the aggregator's worker process killed with SIGKILL while a window's merge is between
    two bucket writes (the first landed, the second is in flight), Lambda's retry of the window on a
    fresh worker completes the merge without counting the landed bucket twice."""
    stack, injector = cloud
    assert stack.cloud is not None
    aggregator = function_name(stack, AGGREGATOR)
    specs = plan(150, 12, seed=202)
    messages = messages_of(specs)
    errors_before = mapping_errors(stack)
    # Hold each bucket write for a while so the merge is caught in the middle.
    slow = Latency("dynamodb", {"PutItem"}, delay_s=1.5, body_contains='"BUCKET#', limit=2)
    killed: list[int] = []
    with injector.active(slow):
        send(stack, messages)
        wait_until(lambda: slow.injected >= 2, 60, "the second bucket write of a merge")
        pool = stack.cloud.runtime.pool(aggregator)
        assert pool is not None
        killed = kill_processes(pool.worker_pids(busy_only=True))
    assert killed, "no aggregator worker was running an invocation"
    wait_until(lambda: mapping_errors(stack) > errors_before, 30, "the killed invocation to fail")
    drain(stack)
    log = "\n".join(stack.cloud.runtime.log(aggregator).lines())
    assert "Runtime exited with error: signal: killed" in log
    assert_standings_match(stack, specs, messages)


def test_table_throttled_longer_than_an_invocation_then_recovering_lands_the_window_once(
    cloud: tuple[LocalStack, FaultInjector],
) -> None:
    """Given every DynamoDB call of the aggregator throttled for longer than one invocation can keep
    retrying — the store's one retry policy gives up within the invocation's time (no SDK retries
    stacked underneath) and the invocation fails, so the mapping retries the window — once the
    table recovers the window's data lands, exactly once."""
    stack, injector = cloud
    assert stack.cloud is not None
    aggregator = function_name(stack, AGGREGATOR)
    specs = plan(80, 10, seed=204)
    messages = messages_of(specs)
    errors_before = mapping_errors(stack)
    throttle = ErrorResponse(
        "dynamodb",
        {"PutItem", "UpdateItem", "GetItem", "BatchGetItem", "Query"},
        code="ProvisionedThroughputExceededException",
        message="The level of configured provisioned throughput for the table was exceeded.",
        # The aggregator's timeout is 60 s and the store retries until 3 s before it runs out.
        duration_s=75,
    )
    with injector.active(throttle):
        send(stack, messages)
        # An invocation gives up while the table still throttles: the window is retried, not lost.
        wait_until(lambda: mapping_errors(stack) > errors_before, 72, "an invocation to give up on the table")
        log = "\n".join(stack.cloud.runtime.log(aggregator).lines())
        assert "RetryBudgetExhaustedError" in log
    drain(stack)
    assert_standings_match(stack, specs, messages)
