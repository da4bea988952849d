"""End to end through the KCL consumer: localcloud's Kinesis → 2 KCL workers (real JVMs running the
MultiLangDaemon and consumers.kcl.app) → DynamoDB → the API, compared with the oracle.

Needs Java; the KCL's jars come with amazon-kclpy (``make setup``).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alleycat.stack import LocalStack
from tests.faults.support import (
    WINDOW_IDLE_WAIT_S,
    WINDOW_SECONDS,
    assert_standings_match,
    messages_of,
    outputs,
    plan,
    receive_all,
    send,
    wait_until,
)

pytestmark = [
    pytest.mark.skipif(shutil.which("java") is None, reason="the KCL consumer needs Java"),
    pytest.mark.timeout(420),
]
# JVM start, lease table creation and lease assignment take a while on a busy 2-core machine.
STANDINGS_TIMEOUT_S = 240.0


@pytest.fixture
def kcl_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """The local stack with 2 shards consumed by 2 KCL workers instead of the aggregator mapping."""
    stack = LocalStack(
        home=tmp_path,
        persist=False,
        parameters={"WindowSeconds": WINDOW_SECONDS, "ShardCount": "2"},
        window_idle_wait_s=WINDOW_IDLE_WAIT_S,
        consumer="kcl",
        kcl_workers=2,
    )
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


def _standings_exact(stack: LocalStack, specs: Any, messages: Any) -> bool:
    try:
        assert_standings_match(stack, specs, messages)
    except AssertionError:
        return False
    return True


def _leases(stack: LocalStack) -> list[dict[str, Any]]:
    """The KCL lease table's items (one per shard): leaseKey, leaseOwner, checkpoint."""
    assert stack.cloud is not None and stack.kcl is not None
    table = stack.kcl.workers[0].config.application_name
    ddb = stack.cloud.client("dynamodb")
    try:
        items = ddb.scan(TableName=table).get("Items", [])
    except ddb.exceptions.ResourceNotFoundException:
        return []  # the workers have not created it yet
    return [{key: next(iter(value.values())) for key, value in item.items()} for item in items]


def _stream_mapping_batches(stack: LocalStack) -> int:
    assert stack.cloud is not None
    arn = outputs(stack)["StreamArn"]
    return sum(s.batches for s in stack.cloud.mapping_engine.stats() if s.event_source_arn == arn)


def test_a_race_through_two_kcl_workers_matches_the_oracle(kcl_stack: LocalStack) -> None:
    # Given two KCL workers, each holding one of the stream's two shards
    wait_until(
        lambda: len({lease.get("leaseOwner") for lease in _leases(kcl_stack)} - {None}) == 2,
        STANDINGS_TIMEOUT_S,
        "each worker to take a lease",
    )
    # When races on both shards run to their end
    specs = plan(25, 20, seed=14, classes=(1, 2, 3, 4))
    messages = messages_of(specs)
    send(kcl_stack, messages)
    # Then every race's final standings are exactly the oracle's
    wait_until(lambda: _standings_exact(kcl_stack, specs, messages), STANDINGS_TIMEOUT_S, "exact standings")
    assert_standings_match(kcl_stack, specs, messages)
    # ... written by the KCL path alone: the aggregator's mapping never delivered a batch
    assert _stream_mapping_batches(kcl_stack) == 0
    # ... and each shard's checkpoint has moved past TRIM_HORIZON, taken after its merges
    wait_until(
        lambda: all(str(lease.get("checkpoint", "")).isdigit() for lease in _leases(kcl_stack)),
        60.0,
        "checkpoints on every shard",
    )
    assert receive_all(kcl_stack, expected=0, timeout=1.0) == []


def test_killing_a_worker_mid_race_moves_its_leases_and_standings_stay_exact(kcl_stack: LocalStack) -> None:
    # Given both workers holding a lease and a race under way
    wait_until(
        lambda: len({lease.get("leaseOwner") for lease in _leases(kcl_stack)} - {None}) == 2,
        STANDINGS_TIMEOUT_S,
        "each worker to take a lease",
    )
    specs = plan(20, 30, seed=15, classes=(1, 2, 3, 4))
    messages = messages_of(specs)
    half = len(messages) // 2
    send(kcl_stack, messages[:half])
    assert kcl_stack.kcl is not None
    workers = {worker.worker_id: worker for worker in kcl_stack.kcl.workers}

    def checkpointed_owners() -> set[str]:
        return {
            str(lease["leaseOwner"])
            for lease in _leases(kcl_stack)
            if lease.get("leaseOwner") in workers and str(lease.get("checkpoint", "")).isdigit()
        }

    # When a worker is killed -9 once it has taken its first window's checkpoint (whichever worker
    # that is: on a busy machine a starved worker's lease may already have moved to the other one)
    wait_until(lambda: bool(checkpointed_owners()), STANDINGS_TIMEOUT_S, "a worker's first checkpoint")
    victim = workers[sorted(checkpointed_owners())[0]]
    (survivor,) = [worker for worker in workers.values() if worker is not victim]
    victim.kill()
    killed_at = time.monotonic()
    send(kcl_stack, messages[half:])
    # Then the survivor takes its lease over
    wait_until(
        lambda: {lease.get("leaseOwner") for lease in _leases(kcl_stack)} == {survivor.worker_id},
        STANDINGS_TIMEOUT_S,
        "the survivor to own every lease",
    )
    # ... and the standings are still exact, with nothing parked as a failure
    wait_until(lambda: _standings_exact(kcl_stack, specs, messages), STANDINGS_TIMEOUT_S, "exact standings")
    assert_standings_match(kcl_stack, specs, messages)
    assert not victim.alive() and survivor.alive()
    assert time.monotonic() - killed_at > 0
    assert receive_all(kcl_stack, expected=0, timeout=1.0) == []
