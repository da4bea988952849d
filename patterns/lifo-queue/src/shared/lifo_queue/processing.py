"""One processing run: hold the lease, take the newest PENDING tasks one by one, validate each with
the legacy system, record the outcome, and ask for a tail call if work remains when time is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lifo_queue.legacy import LegacySystem, Outcome
from lifo_queue.store import TaskStore, TransitionRefusedError
from lifo_queue.tasks import after_validation

# Tasks read per query. Small, so a task created meanwhile is seen within a few validations:
# the queue stays newest-first under load.
BATCH = 5


@dataclass
class RunReport:
    """What one run did."""

    leased: bool
    processed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    tail_call: bool = False


def process_queue(
    store: TaskStore,
    legacy: LegacySystem,
    *,
    runner_id: str,
    window_s: float,
    max_attempts: int,
    tail_call: Callable[[], None],
    clock: Callable[[], float] = time.monotonic,
) -> RunReport:
    """Work the queue newest-first for up to ``window_s`` seconds as ``runner_id``.

    Returns at once when another run holds the lease (no runaway parallel runs). The lease lasts
    the window plus a margin, so a run that dies is replaced once it runs out.
    """
    if not store.acquire_lease(runner_id, window_s + 30.0):
        return RunReport(leased=False)
    report = RunReport(leased=True)
    deadline = clock() + window_s
    try:
        while clock() < deadline:
            batch = store.newest_pending(BATCH)
            if not batch:
                break
            for pending in batch:
                if clock() >= deadline:
                    break
                try:
                    task = store.take(pending, runner_id)
                except TransitionRefusedError:
                    report.refused += 1  # taken, finished or expired since the query
                    continue
                outcome = legacy.validate(task.task_id, task.created, task.payload, runner_id)
                store.apply(task, after_validation(task, outcome, max_attempts))
                report.processed += 1
                report.outcomes[str(outcome)] = report.outcomes.get(str(outcome), 0) + 1
                if outcome is not Outcome.ACCEPTED:
                    break  # a retried task is PENDING again: read the queue afresh
        work_left = bool(store.newest_pending(1))
    finally:
        store.release_lease(runner_id)
    if work_left:
        # After the release, so the run this starts can take the lease at once.
        tail_call()
        report.tail_call = True
    return report
