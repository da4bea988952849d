"""The whole stack under 5x overload (localcloud): newest first, never twice, TTL sheds the old,
and the queue drains through tail calls once the load stops.

The issue's figure is 60 s of overload; this test runs 15 s (the benchmark runs the 60 s version).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from lifo_load import generate_load
from lifo_measure import newest_share_wait_p50, overtaken_share, read_ledger, runs_overlap
from lifo_queue.store import TaskStore

from localcloud import LocalCloud

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
CAPACITY = 10.0  # tasks/s the legacy system handles
RATE = 5 * CAPACITY  # 5x overload
LOAD_S = 15.0
TTL_S = 6

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    # Throttled wake-ups of the processor are retried after 10 ms, 20 ms, ... instead of 1 s, 2 s, ...
    with LocalCloud(
        metrics=False, api_gateway=False, iot=False, ttl_sweep_interval_s=0.5, async_time_scale=0.01
    ) as local:
        yield local


def wait_for(predicate: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.fixture(scope="module")
def run(cloud: LocalCloud, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Deploy, overload for LOAD_S seconds, wait for the queue to drain; what happened."""
    ledger = tmp_path_factory.mktemp("lifo") / "ledger.jsonl"
    outputs = cloud.deploy(
        TEMPLATE,
        "lifo",
        parameters={
            "TaskTtlSeconds": str(TTL_S),
            "ProcessingWindowSeconds": "3",
            "LegacyCapacityPerSecond": str(CAPACITY),
            "LegacyLedgerPath": str(ledger),
        },
    ).outputs
    store = TaskStore(cloud.client("dynamodb"), outputs["TaskTableName"])
    tasks = generate_load(store.put_new, RATE, LOAD_S, TTL_S)
    load_end = time.time()
    # Drained: nothing PENDING that is still alive, and no run holds the lease.
    wait_for(lambda: not store.newest_pending(1) and not store.lease_held(), timeout=120)
    return {
        "store": store,
        "outputs": outputs,
        "created": {t.task_id: t.created for t in tasks},
        "entries": read_ledger(ledger),
        "load_end": load_end,
    }


def test_the_load_was_an_overload(run: dict[str, Any]) -> None:
    # At least twice what the legacy system can take was offered (the generator aims at five times;
    # on a machine busy with other work it reaches less, and twice is already an overload)
    assert len(run["created"]) >= 2 * CAPACITY * LOAD_S
    assert len(run["entries"]) < 0.5 * len(run["created"])


def test_no_task_reaches_the_legacy_system_twice(run: dict[str, Any]) -> None:
    ids = [e.task_id for e in run["entries"]]
    assert len(ids) == len(set(ids))
    assert {e.outcome for e in run["entries"]} == {"ACCEPTED"}


def test_tasks_are_served_newest_first(run: dict[str, Any]) -> None:
    # During the overload, each call served a task while hardly any newer one was kept waiting,
    during = [e for e in run["entries"] if e.started < run["load_end"]]
    # (enough calls to judge the order by; how many the processor makes on a busy machine is not
    # what this test is about)
    assert len(during) >= CAPACITY * LOAD_S * 0.2
    # (a FIFO leaves a newer task waiting on almost every call: 0.96 in `make bench`; LIFO 0.12 there
    # and up to 0.26 on a busy machine, where the processor reads the queue less often)
    assert overtaken_share(run["created"], during) < 0.4
    # so the tasks served waited little, although the backlog grew by 40 tasks a second
    waits = sorted(e.wait_s for e in during)
    assert waits[len(waits) // 2] < 2.0
    # and the newest tenth of all tasks waited well under the TTL, which is what a FIFO's newest
    # tasks wait under overload (served just before being shed, or not at all)
    newest_wait = newest_share_wait_p50(run["created"], run["entries"])
    assert newest_wait is not None and newest_wait < TTL_S / 2


def test_old_tasks_are_shed_by_ttl(run: dict[str, Any]) -> None:
    # The tasks never served are gone from the table: nothing but TTL deletes tasks
    served = {e.task_id for e in run["entries"]}
    shed = [t for t in run["created"] if t not in served]
    assert len(shed) > 0.5 * len(run["created"])
    store: TaskStore = run["store"]
    wait_for(lambda: all(store.get(t) is None for t in shed[:: max(1, len(shed) // 25)]), timeout=30)


def test_the_queue_drains_through_tail_calls_after_the_load(cloud: LocalCloud, run: dict[str, Any]) -> None:
    # Work went on after the last task was created (no stream events then: tail calls carried it)
    assert any(e.started > run["load_end"] + 1.0 for e in run["entries"])
    trigger_log = "\n".join(cloud.runtime.log(run["outputs"]["TriggerFunctionName"]).lines())
    assert "tail-call" in trigger_log


def test_processing_runs_never_overlap(run: dict[str, Any]) -> None:
    # One run at a time, however many wake-ups arrived together
    callers = {e.caller for e in run["entries"]}
    assert len(callers) >= 3  # several windows of 3 s, each a run started by a tail call or event
    assert not runs_overlap(run["entries"])
