"""End to end through the KCL consumer: localcloud's Kinesis → 2 KCL workers (real JVMs running the
MultiLangDaemon and consumers.kcl.app) → DynamoDB → the API, compared with the oracle.

One stack and one pair of workers serve the whole module (a JVM pair's start and the KCL's lease
table bootstrap are most of each test's time), with the KCL's lease timings shortened. The stream
starts with one shard; the resharding test splits it in two, and the tests after it run on the two
children. Needs Java; the KCL's jars come with amazon-kclpy (``make setup``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from alleycat.dashboard import KCL_METRICS
from alleycat.stack import LocalStack
from tests.faults.support import (
    KCL_TEST_PROPERTIES,
    WINDOW_IDLE_WAIT_S,
    WINDOW_SECONDS,
    assert_standings_match,
    kcl_leases,
    messages_of,
    outputs,
    plan,
    receive_all,
    send,
    wait_until,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("java") is None, reason="the KCL consumer needs Java"),
    # One stack for the module: its tests run on one xdist worker, in file order.
    pytest.mark.xdist_group("kcl-consumer"),
    pytest.mark.timeout(300),
]
# JVM start, lease table creation and lease assignment take a while on a busy 2-core machine.
STANDINGS_TIMEOUT_S = 180.0
SHARD_END = "SHARD_END"


@pytest.fixture(scope="module")
def kcl_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The local stack with one shard consumed by 2 KCL workers instead of the aggregator mapping."""
    stack = LocalStack(
        home=Path(tmp_path_factory.mktemp("kcl-consumer")),
        persist=False,
        parameters={"WindowSeconds": WINDOW_SECONDS, "ShardCount": "1"},
        window_idle_wait_s=WINDOW_IDLE_WAIT_S,
        consumer="kcl",
        kcl_workers=2,
        kcl_properties=KCL_TEST_PROPERTIES,
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


def _live_leases(stack: LocalStack) -> list[dict[str, Any]]:
    """Leases of shards still being read (a split parent's lease stays, at SHARD_END, for a while)."""
    return [lease for lease in kcl_leases(stack) if lease.get("checkpoint") != SHARD_END]


def _open_shards(stack: LocalStack) -> list[str]:
    assert stack.cloud is not None
    shards = stack.cloud.client("kinesis").list_shards(StreamName=outputs(stack)["StreamName"])["Shards"]
    return [s["ShardId"] for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]


def _reshard(stack: LocalStack, target: int) -> None:
    assert stack.cloud is not None
    kinesis = stack.cloud.client("kinesis")
    stream = outputs(stack)["StreamName"]
    kinesis.update_shard_count(StreamName=stream, TargetShardCount=target, ScalingType="UNIFORM_SCALING")
    wait_until(lambda: len(_open_shards(stack)) == target, 30, f"{target} open shards")


def _stream_mapping_batches(stack: LocalStack) -> int:
    assert stack.cloud is not None
    arn = outputs(stack)["StreamArn"]
    return sum(s.batches for s in stack.cloud.mapping_engine.stats() if s.event_source_arn == arn)


def _spread_base(races: int, seed: int) -> int:
    """A raceId base whose consecutive ids (the partition keys) hash into both halves of the key
    space, so both children of a 1 → 2 split receive records."""
    base = plan(1, 1, seed=seed)[0].race_id
    while True:
        halves = {int(hashlib.md5(str(base + i).encode()).hexdigest(), 16) >> 127 for i in range(races)}
        if halves == {0, 1}:
            return base
        base += races


def _processor_events(stack: LocalStack, what: str) -> dict[str, float]:
    """Wall-clock times the record processors logged ``what`` ("first records", "read to its end"),
    by shard (the daemon copies its processors' standard error into the worker's log)."""
    assert stack.kcl is not None
    pattern = re.compile(rf"shard (shardId-\d+): {what} at (\d+\.\d+)")
    events: dict[str, float] = {}
    for worker in stack.kcl.workers:
        text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
        for shard, at in pattern.findall(text):
            events[shard] = min(float(at), events.get(shard, float("inf")))
    return events


def _leader(stack: LocalStack) -> str | None:
    """The worker holding the KCL's leader lock (in ``<application>-CoordinatorState``): it runs
    lease assignment, so a dead leader's shards wait for its lock to expire (two minutes) as well."""
    assert stack.cloud is not None and stack.kcl is not None
    table = f"{stack.kcl.workers[0].config.application_name}-CoordinatorState"
    items = stack.cloud.client("dynamodb").scan(TableName=table, ConsistentRead=True).get("Items", [])
    owners = [item["ownerName"]["S"] for item in items if "ownerName" in item]
    return owners[0] if owners else None


def _two_workers_leasing(stack: LocalStack) -> None:
    """Given: two open shards, each worker holding a live lease (resharding to two if need be)."""
    if len(_open_shards(stack)) < 2:
        _reshard(stack, 2)
    wait_until(
        lambda: len({lease.get("leaseOwner") for lease in _live_leases(stack)} - {None}) == 2,
        STANDINGS_TIMEOUT_S,
        "each worker to hold a lease",
    )


def test_a_reshard_one_to_two_mid_race_reads_the_parent_first_and_keeps_exact_standings(
    kcl_stack: LocalStack,
) -> None:
    # Given the stream's one shard leased, and races whose keys spread over both halves of the key
    # space under way on it, with a first window merged and checkpointed
    (parent,) = _open_shards(kcl_stack)
    specs = plan(10, 12, seed=31, classes=(1, 2, 3, 4), race_id_base=_spread_base(4, seed=31))
    messages = sorted(messages_of(specs), key=lambda m: m["second"])
    half = len(messages) // 2
    send(kcl_stack, messages[:half])
    wait_until(
        lambda: any(str(lease.get("checkpoint", "")).isdigit() for lease in kcl_leases(kcl_stack)),
        STANDINGS_TIMEOUT_S,
        "the parent's first checkpoint",
    )
    # When the stream is split into two shards mid-race and the races' second halves go to them
    _reshard(kcl_stack, 2)
    children = _open_shards(kcl_stack)
    send(kcl_stack, messages[half:])
    # Then every race's standings are exactly the oracle's, with nothing parked as a failure
    wait_until(lambda: _standings_exact(kcl_stack, specs, messages), STANDINGS_TIMEOUT_S, "exact standings")
    assert_standings_match(kcl_stack, specs, messages)
    assert receive_all(kcl_stack, expected=0, timeout=1.0) == []
    # ... the parent was read to its end and checkpointed there; each child's lease names it
    leases = {str(lease["leaseKey"]): lease for lease in kcl_leases(kcl_stack)}
    assert leases[parent]["checkpoint"] == SHARD_END, leases[parent]
    assert sorted(leases[parent]["childShardIds"]) == sorted(children), leases[parent]
    for child in children:
        assert leases[child]["parentShardId"] == [parent], leases[child]
    # ... and both children got records, each only after its parent had ended (parent before child)
    wait_until(lambda: set(children) <= set(_processor_events(kcl_stack, "first records")), 30, "child logs")
    ended = _processor_events(kcl_stack, "read to its end")
    first_records = _processor_events(kcl_stack, "first records")
    assert all(first_records[child] > ended[parent] for child in children), (ended, first_records)


def test_a_race_through_two_kcl_workers_matches_the_oracle(kcl_stack: LocalStack) -> None:
    # Given two shards, each leased by one of the two workers
    _two_workers_leasing(kcl_stack)
    # When races on both shards run to their end
    specs = plan(15, 12, seed=14, classes=(1, 2, 3, 4))
    messages = messages_of(specs)
    send(kcl_stack, messages)
    # Then every race's final standings are exactly the oracle's
    wait_until(lambda: _standings_exact(kcl_stack, specs, messages), STANDINGS_TIMEOUT_S, "exact standings")
    assert_standings_match(kcl_stack, specs, messages)
    # ... written by the KCL path alone: the aggregator's mapping never delivered a batch
    assert _stream_mapping_batches(kcl_stack) == 0
    # ... and each live shard's checkpoint has moved past TRIM_HORIZON, taken after its merges
    wait_until(
        lambda: all(str(lease.get("checkpoint", "")).isdigit() for lease in _live_leases(kcl_stack)),
        60.0,
        "checkpoints on every shard",
    )
    assert receive_all(kcl_stack, expected=0, timeout=1.0) == []


def test_the_kcl_metrics_reach_localcloud_and_the_local_dashboard(kcl_stack: LocalStack) -> None:
    """The KCL's own CloudWatch metrics (lease count, records processed, millis behind latest) land in
    localcloud's CloudWatch, and the local dashboard page serves the KCL dashboard that charts them."""
    assert kcl_stack.cloud is not None and kcl_stack.kcl is not None and kcl_stack.dashboard is not None
    cloudwatch = kcl_stack.cloud.client("cloudwatch")
    namespace = kcl_stack.kcl.workers[0].config.application_name

    def published() -> set[tuple[str, str]]:
        """(metric, Operation) of the KCL's metrics, where Operation is their only dimension."""
        metrics = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
        return {
            (m["MetricName"], m["Dimensions"][0]["Value"])
            for m in metrics
            if [d["Name"] for d in m["Dimensions"]] == ["Operation"]
        }

    # Records went through earlier tests of the module (or go through now, when run alone).
    if ("RecordsProcessed", "ProcessTask") not in published():
        send(kcl_stack, messages_of(plan(3, 4, seed=41)))
    wait_until(lambda: set(KCL_METRICS) <= published(), 120, "the KCL's metrics")
    # The local dashboard page lists the KCL's dashboard, whose widgets chart exactly these series.
    with urllib.request.urlopen(f"{kcl_stack.dashboard.url.rstrip('/')}/api/dashboards", timeout=30) as page:
        listed = page.read().decode()
    assert namespace in listed
    body = json.loads(cloudwatch.get_dashboard(DashboardName=namespace)["DashboardBody"])
    charted = {
        (row[1], row[3])
        for widget in body["widgets"]
        for row in widget["properties"].get("metrics", [])
        if row[0] == namespace
    }
    assert charted == set(KCL_METRICS)


def test_killing_a_worker_mid_race_moves_its_leases_and_standings_stay_exact(kcl_stack: LocalStack) -> None:
    # Given both workers holding a lease and a race under way
    _two_workers_leasing(kcl_stack)
    # Races on both shards, sent second by second: a follower whose first half held no records of
    # this race (or only one window of them) would never checkpoint before the kill.
    specs = plan(15, 16, seed=15, classes=(1, 2, 3, 4), race_id_base=_spread_base(4, seed=15))
    messages = sorted(messages_of(specs), key=lambda m: m["second"])
    half = len(messages) // 2
    assert kcl_stack.kcl is not None
    workers = {worker.worker_id: worker for worker in kcl_stack.kcl.workers}
    checkpoints_before = {
        str(lease["leaseKey"]): lease.get("checkpoint") for lease in _live_leases(kcl_stack)
    }
    send(kcl_stack, messages[:half])

    def checkpointed_followers() -> set[str]:
        leader = _leader(kcl_stack)
        return {
            str(lease["leaseOwner"])
            for lease in _live_leases(kcl_stack)
            if lease.get("leaseOwner") in workers
            and lease.get("leaseOwner") != leader
            and lease.get("checkpoint") != checkpoints_before.get(str(lease["leaseKey"]))
        }

    # When the worker that is not the KCL's leader is killed -9 once it has checkpointed this race's
    # first window (the leader's death would add its lock's two-minute expiry to the takeover)
    wait_until(lambda: bool(checkpointed_followers()), STANDINGS_TIMEOUT_S, "a worker's checkpoint")
    victim = workers[sorted(checkpointed_followers())[0]]
    (survivor,) = [worker for worker in workers.values() if worker is not victim]
    victim.kill()
    send(kcl_stack, messages[half:])
    # Then the survivor takes its lease over
    wait_until(
        lambda: {lease.get("leaseOwner") for lease in _live_leases(kcl_stack)} == {survivor.worker_id},
        STANDINGS_TIMEOUT_S,
        "the survivor to own every lease",
    )
    # ... and the standings are still exact, with nothing parked as a failure
    wait_until(lambda: _standings_exact(kcl_stack, specs, messages), STANDINGS_TIMEOUT_S, "exact standings")
    assert_standings_match(kcl_stack, specs, messages)
    assert not victim.alive() and survivor.alive()
    assert receive_all(kcl_stack, expected=0, timeout=1.0) == []
