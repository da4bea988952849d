"""The task state machine and the legacy stand-in, without AWS."""

from __future__ import annotations

import itertools

import pytest
from lifo_queue.legacy import LegacySystem, Outcome
from lifo_queue.tasks import (
    GIVE_UP,
    RETRY,
    SUCCEED,
    TAKE,
    IllegalTransitionError,
    Task,
    TaskStatus,
    after_validation,
    transition,
)

LEGAL = {
    (TaskStatus.PENDING, TaskStatus.TAKEN),
    (TaskStatus.TAKEN, TaskStatus.SUCCESS),
    (TaskStatus.TAKEN, TaskStatus.FAILURE),
    (TaskStatus.TAKEN, TaskStatus.PENDING),
}


@pytest.mark.parametrize(("source", "target"), list(itertools.product(TaskStatus, TaskStatus)))
def test_only_the_four_transitions_exist(source: TaskStatus, target: TaskStatus) -> None:
    # Given any pair of statuses, when the transition between them is asked for
    if (source, target) in LEGAL:
        # Then the legal ones exist
        assert transition(source, target).target is target
    else:
        # And every other one is refused
        with pytest.raises(IllegalTransitionError):
            transition(source, target)


def taken(attempts: int) -> Task:
    return Task(
        "t", TaskStatus.TAKEN, created=0.0, expires_at=10.0, payload={}, attempts=attempts, taken_by="r"
    )


def test_outcomes_decide_where_a_taken_task_goes() -> None:
    # Given a task on its first attempt, with three attempts allowed
    task = taken(attempts=1)
    # Then accepted is SUCCESS, rejected is FAILURE at once, unavailable goes back to PENDING
    assert after_validation(task, Outcome.ACCEPTED, max_attempts=3) is SUCCEED
    assert after_validation(task, Outcome.REJECTED, max_attempts=3) is GIVE_UP
    assert after_validation(task, Outcome.UNAVAILABLE, max_attempts=3) is RETRY


def test_an_unavailable_legacy_system_is_retried_until_the_attempts_run_out() -> None:
    # Given a task on its last allowed attempt, when the legacy system is unavailable again
    # Then it is given up (FAILURE), not retried forever
    assert after_validation(taken(attempts=3), Outcome.UNAVAILABLE, max_attempts=3) is GIVE_UP


def test_only_a_taken_task_has_an_outcome() -> None:
    pending = Task("t", TaskStatus.PENDING, created=0.0, expires_at=10.0, payload={})
    with pytest.raises(IllegalTransitionError):
        after_validation(pending, Outcome.ACCEPTED, max_attempts=3)
    assert TAKE.source is TaskStatus.PENDING


def test_expiry_is_the_ttl() -> None:
    task = Task("t", TaskStatus.PENDING, created=0.0, expires_at=10.0, payload={})
    assert not task.is_expired(9.999)
    assert task.is_expired(10.0)


def test_the_legacy_system_never_exceeds_its_capacity() -> None:
    # Given a legacy system of 10 tasks/s on a fake clock
    now = [100.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    legacy = LegacySystem(10.0, clock=lambda: now[0], sleep=sleep)

    # When 50 tasks arrive at once
    outcomes = [legacy.validate(f"t{i}", 100.0, {}, "test") for i in range(50)]

    # Then they took 4.9 s (the first at once, then one per 0.1 s), and the payload decides outcomes
    assert now[0] == pytest.approx(104.9)
    assert set(outcomes) == {Outcome.ACCEPTED}
    assert legacy.validate("x", 0.0, {"simulate": "reject"}, "test") is Outcome.REJECTED
    assert legacy.validate("y", 0.0, {"simulate": "unavailable"}, "test") is Outcome.UNAVAILABLE
