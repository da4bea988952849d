"""The task state machine, pure: no AWS, no clock, no I/O.

    PENDING ──take──▶ TAKEN ──succeed──▶ SUCCESS
       ▲                │
       └────retry───────┤
                        └──give up──▶ FAILURE

Only these four transitions exist. Each is applied by the store as one DynamoDB conditional write
whose condition is the transition's source status (and, for the moves out of TAKEN, the taker's
id), so of two concurrent takers exactly one wins and a task is never processed twice.

A task the legacy system could not reach (``UNAVAILABLE``) goes back to PENDING until it has been
tried ``max_attempts`` times, then to FAILURE; a task it rejects goes to FAILURE at once. PENDING
tasks older than the queue's TTL are shed by DynamoDB TTL (and never taken once expired).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from lifo_queue.legacy import Outcome


class TaskStatus(StrEnum):
    """Where a task is in its life."""

    PENDING = "PENDING"
    TAKEN = "TAKEN"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


@dataclass(frozen=True)
class Transition:
    """A legal move between two statuses, with its name in the domain."""

    name: str
    source: TaskStatus
    target: TaskStatus


TAKE = Transition("take", TaskStatus.PENDING, TaskStatus.TAKEN)
SUCCEED = Transition("succeed", TaskStatus.TAKEN, TaskStatus.SUCCESS)
GIVE_UP = Transition("give up", TaskStatus.TAKEN, TaskStatus.FAILURE)
RETRY = Transition("retry", TaskStatus.TAKEN, TaskStatus.PENDING)

TRANSITIONS: dict[tuple[TaskStatus, TaskStatus], Transition] = {
    (t.source, t.target): t for t in (TAKE, SUCCEED, GIVE_UP, RETRY)
}


class IllegalTransitionError(ValueError):
    """A move the state machine does not have (e.g. SUCCESS → TAKEN)."""

    def __init__(self, source: TaskStatus, target: TaskStatus) -> None:
        super().__init__(f"a task cannot go from {source} to {target}")
        self.source = source
        self.target = target


def transition(source: TaskStatus, target: TaskStatus) -> Transition:
    """The transition from ``source`` to ``target``; raises IllegalTransitionError if there is none."""
    try:
        return TRANSITIONS[(source, target)]
    except KeyError:
        raise IllegalTransitionError(source, target) from None


@dataclass(frozen=True)
class Task:
    """One unit of work: validating a device connection with the legacy system.

    ``created`` and ``expires_at`` are epoch seconds; ``attempts`` counts the legacy calls so far.
    """

    task_id: str
    status: TaskStatus
    created: float
    expires_at: float
    payload: dict[str, str]
    attempts: int = 0
    taken_by: str | None = None

    def is_expired(self, now: float) -> bool:
        """Whether the task outlived its TTL (DynamoDB may not have deleted it yet)."""
        return now >= self.expires_at


def after_validation(task: Task, outcome: Outcome, max_attempts: int) -> Transition:
    """Where a TAKEN task goes once the legacy system answered ``outcome`` (``task.attempts``
    includes this call): accepted → SUCCESS; rejected → FAILURE; unavailable → PENDING again,
    unless it has now been tried ``max_attempts`` times, then FAILURE."""
    if task.status is not TaskStatus.TAKEN:
        raise IllegalTransitionError(task.status, TaskStatus.SUCCESS)
    if outcome is Outcome.ACCEPTED:
        return SUCCEED
    if outcome is Outcome.UNAVAILABLE and task.attempts < max_attempts:
        return RETRY
    return GIVE_UP
