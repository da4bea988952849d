"""The task store against DynamoDB (localcloud): conditional transitions, the lease, TTL shedding."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from lifo_queue.store import TaskStore, TransitionRefusedError, new_task
from lifo_queue.tasks import GIVE_UP, RETRY, SUCCEED, IllegalTransitionError, TaskStatus

from localcloud import LocalCloud

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(metrics=False, api_gateway=False, iot=False, ttl_sweep_interval_s=0.2) as local:
        yield local


def create_task_table(client: Any, name: str) -> None:
    """The template's table, made through the API (no processor runs against it here)."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "taskId", "AttributeType": "S"},
            {"AttributeName": "taskStatus", "AttributeType": "S"},
            {"AttributeName": "taskCreated", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "taskId", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "ByStatus",
                "KeySchema": [
                    {"AttributeName": "taskStatus", "KeyType": "HASH"},
                    {"AttributeName": "taskCreated", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    client.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiresAt"}
    )


@pytest.fixture
def store(cloud: LocalCloud, request: pytest.FixtureRequest) -> TaskStore:
    name = f"tasks-{request.node.name[:40]}"
    client = cloud.client("dynamodb")
    create_task_table(client, name)
    return TaskStore(client, name)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_the_newest_pending_tasks_come_first(store: TaskStore) -> None:
    # Given tasks created one after another
    now = time.time()
    for i in range(6):
        store.put_new(new_task({"n": str(i)}, 60, now + i, task_id=f"task-{i}"))

    # When the newest three are asked for, then they come newest first
    assert [t.task_id for t in store.newest_pending(3)] == ["task-5", "task-4", "task-3"]


def test_a_task_is_taken_by_exactly_one_of_many_concurrent_takers(store: TaskStore) -> None:
    # Given 20 PENDING tasks and 8 takers racing for every one of them
    now = time.time()
    tasks = [new_task({}, 60, now, task_id=f"race-{i}") for i in range(20)]
    for task in tasks:
        store.put_new(task)
    wins: dict[str, list[str]] = {t.task_id: [] for t in tasks}
    lock = threading.Lock()
    start = threading.Barrier(8)

    def taker(name: str) -> None:
        start.wait()
        for task in tasks:
            try:
                store.take(task, name)
            except TransitionRefusedError:
                continue
            with lock:
                wins[task.task_id].append(name)

    threads = [threading.Thread(target=taker, args=(f"taker-{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then each task has exactly one winner, and the table agrees
    assert all(len(winners) == 1 for winners in wins.values()), wins
    for task in tasks:
        stored = store.get(task.task_id)
        assert stored is not None and stored.status is TaskStatus.TAKEN
        assert stored.taken_by == wins[task.task_id][0] and stored.attempts == 1


def test_illegal_and_stale_transitions_are_refused(store: TaskStore) -> None:
    # Given a task taken by A
    task = new_task({}, 60, time.time(), task_id="t")
    store.put_new(task)
    held = store.take(task, "A")

    # Then B cannot finish it (the condition names the taker), nor take it again
    with pytest.raises(TransitionRefusedError):
        store.apply(held.__class__(**{**held.__dict__, "taken_by": "B"}), SUCCEED)
    with pytest.raises(TransitionRefusedError):
        store.take(task, "B")

    # When A finishes it, a second finish from the same stale view is refused
    store.apply(held, SUCCEED)
    with pytest.raises(TransitionRefusedError):
        store.apply(held, GIVE_UP)
    done = store.get("t")
    assert done is not None and done.status is TaskStatus.SUCCESS

    # And the state machine refuses moves it does not have before any write
    with pytest.raises(IllegalTransitionError):
        store.apply(done, RETRY)
    with pytest.raises(IllegalTransitionError):
        store.put_new(done)


def test_a_retried_task_is_pending_again_and_counts_its_attempts(store: TaskStore) -> None:
    task = new_task({}, 60, time.time(), task_id="retry")
    store.put_new(task)
    store.apply(store.take(task, "A"), RETRY)
    again = store.take(task, "B")
    assert again.attempts == 2 and again.taken_by == "B"


def test_an_expired_task_is_never_taken_and_ttl_sheds_it(store: TaskStore) -> None:
    # Given a task that expired a moment ago (TTL has not swept it yet, or has)
    task = new_task({}, 1, time.time() - 2, task_id="old")
    store.put_new(task)

    # Then it is not offered, cannot be taken, and TTL deletes it
    assert store.newest_pending(10) == []
    with pytest.raises(TransitionRefusedError):
        store.take(task, "A")
    wait_for(lambda: store.get("old") is None)


def test_the_processing_lease_has_one_holder(store: TaskStore) -> None:
    # Given A holds the lease
    assert store.acquire_lease("A", 30)
    assert store.lease_held()

    # Then B cannot take it until A releases it; B's release does not free A's lease
    assert not store.acquire_lease("B", 30)
    store.release_lease("B")
    assert store.lease_held()
    store.release_lease("A")
    assert not store.lease_held()
    assert store.acquire_lease("B", 30)


def test_an_expired_lease_can_be_taken_over(store: TaskStore) -> None:
    # Given a holder that died: its lease ran out
    assert store.acquire_lease("dead", 0.2)
    wait_for(lambda: not store.lease_held())

    # Then another run takes over
    assert store.acquire_lease("next", 30)
