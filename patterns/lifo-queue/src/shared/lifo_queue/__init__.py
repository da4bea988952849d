"""The LIFO task queue's shared code (a Lambda layer): the task state machine, its DynamoDB store,
the legacy system stand-in and the functions' observability."""

from lifo_queue.legacy import LegacySystem, Outcome
from lifo_queue.tasks import (
    IllegalTransitionError,
    Task,
    TaskStatus,
    Transition,
    after_validation,
    transition,
)

__all__ = [
    "IllegalTransitionError",
    "LegacySystem",
    "Outcome",
    "Task",
    "TaskStatus",
    "Transition",
    "after_validation",
    "transition",
]
