"""The tasks table: every state change a conditional write, the newest PENDING tasks first.

Table layout (see template.yaml):

* ``taskId`` (hash key); ``taskStatus``; ``taskCreated`` (epoch seconds, a Number);
  ``expiresAt`` (the TTL attribute); ``attempts``; ``takenBy``; ``payload``.
* GSI ``ByStatus``: ``taskStatus`` + ``taskCreated``; queried newest first (ScanIndexForward false).
* One more item, ``taskId = "#lease"``, with no ``taskStatus`` (so it never appears in the index):
  the processing lease. Its holder is the one processor working the queue.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from lifo_queue.tasks import (
    TAKE,
    IllegalTransitionError,
    Task,
    TaskStatus,
    Transition,
)

STATUS_INDEX = "ByStatus"
LEASE_ID = "#lease"


class TransitionRefusedError(RuntimeError):
    """DynamoDB refused a transition: the task was not in the expected state (someone else moved it)."""


def _number(value: float) -> dict[str, str]:
    # Milliseconds are precise enough and keep the numbers short.
    return {"N": str(round(Decimal(value), 3))}


def task_item(task: Task) -> dict[str, Any]:
    """The DynamoDB item (low-level attribute values) for ``task``."""
    item: dict[str, Any] = {
        "taskId": {"S": task.task_id},
        "taskStatus": {"S": str(task.status)},
        "taskCreated": _number(task.created),
        "expiresAt": {"N": str(int(task.expires_at))},
        "attempts": {"N": str(task.attempts)},
        "payload": {"M": {k: {"S": v} for k, v in task.payload.items()}},
    }
    if task.taken_by:
        item["takenBy"] = {"S": task.taken_by}
    return item


def task_from_item(item: dict[str, Any]) -> Task:
    """The task a DynamoDB item holds."""
    return Task(
        task_id=item["taskId"]["S"],
        status=TaskStatus(item["taskStatus"]["S"]),
        created=float(item["taskCreated"]["N"]),
        expires_at=float(item["expiresAt"]["N"]),
        payload={k: v.get("S", "") for k, v in item.get("payload", {}).get("M", {}).items()},
        attempts=int(item.get("attempts", {}).get("N", "0")),
        taken_by=item.get("takenBy", {}).get("S"),
    )


def new_task(payload: dict[str, str], ttl_s: float, now: float, task_id: str | None = None) -> Task:
    """A PENDING task created ``now`` that TTL sheds ``ttl_s`` seconds later if still waiting."""
    # Ids that sort by time make the table easy to read; uniqueness comes from the random part.
    return Task(
        task_id=task_id or f"{int(now * 1000):013d}-{uuid.uuid4().hex[:12]}",
        status=TaskStatus.PENDING,
        created=now,
        expires_at=now + ttl_s,
        payload=payload,
    )


class TaskStore:
    """The tasks table through a low-level boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self.table_name = table_name
        self._clock = clock

    # -- tasks ---------------------------------------------------------------------------------
    def put_new(self, task: Task) -> None:
        """Store a new PENDING task (never overwriting one with the same id)."""
        if task.status is not TaskStatus.PENDING:
            raise IllegalTransitionError(task.status, TaskStatus.PENDING)
        self._client.put_item(
            TableName=self.table_name,
            Item=task_item(task),
            ConditionExpression="attribute_not_exists(taskId)",
        )

    def get(self, task_id: str) -> Task | None:
        """The task, read consistently, or None."""
        answer = self._client.get_item(
            TableName=self.table_name, Key={"taskId": {"S": task_id}}, ConsistentRead=True
        )
        return task_from_item(answer["Item"]) if "Item" in answer else None

    def newest_pending(self, limit: int) -> list[Task]:
        """Up to ``limit`` PENDING tasks that have not expired, newest first."""
        now = self._clock()
        answer = self._client.query(
            TableName=self.table_name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="taskStatus = :pending",
            # TTL deletes lazily (on AWS, within days): an expired task is never worth taking.
            FilterExpression="expiresAt > :now",
            ExpressionAttributeValues={
                ":pending": {"S": str(TaskStatus.PENDING)},
                ":now": {"N": str(int(now))},
            },
            ScanIndexForward=False,
            Limit=limit,
        )
        return [task_from_item(item) for item in answer.get("Items", [])]

    def take(self, task: Task, taker: str) -> Task:
        """PENDING → TAKEN by ``taker``; TransitionRefusedError if it is no longer PENDING or expired."""
        now = self._clock()
        try:
            answer = self._client.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task.task_id}},
                UpdateExpression="SET taskStatus = :to, takenBy = :taker, takenAt = :now ADD attempts :one",
                ConditionExpression="taskStatus = :from AND expiresAt > :nowInt",
                ExpressionAttributeValues={
                    ":from": {"S": str(TAKE.source)},
                    ":to": {"S": str(TAKE.target)},
                    ":taker": {"S": taker},
                    ":now": _number(now),
                    ":nowInt": {"N": str(int(now))},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise TransitionRefusedError(f"{task.task_id} is no longer PENDING") from exc
        return task_from_item(answer["Attributes"])

    def apply(self, task: Task, move: Transition) -> None:
        """Move a task this taker holds out of TAKEN (succeed, give up or retry).

        The write is conditional on the task still being TAKEN by the same taker, so a move made
        from a stale view is refused (TransitionRefusedError) and never overwrites another's work.
        """
        if move.source is not task.status or move.source is not TaskStatus.TAKEN or not task.taken_by:
            raise IllegalTransitionError(task.status, move.target)
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"taskId": {"S": task.task_id}},
                UpdateExpression="SET taskStatus = :to, finishedAt = :now REMOVE takenBy",
                ConditionExpression="taskStatus = :from AND takenBy = :taker",
                ExpressionAttributeValues={
                    ":from": {"S": str(move.source)},
                    ":to": {"S": str(move.target)},
                    ":taker": {"S": task.taken_by},
                    ":now": _number(self._clock()),
                },
            )
        except self._client.exceptions.ConditionalCheckFailedException as exc:
            raise TransitionRefusedError(f"{task.task_id} is not TAKEN by {task.taken_by}") from exc

    # -- the processing lease ------------------------------------------------------------------
    def acquire_lease(self, holder: str, duration_s: float) -> bool:
        """Become the one processor for ``duration_s`` seconds, unless a live lease is held."""
        now = self._clock()
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    "taskId": {"S": LEASE_ID},
                    "holder": {"S": holder},
                    "leaseUntil": _number(now + duration_s),
                    # A crashed holder's lease is also cleaned up by TTL eventually.
                    "expiresAt": {"N": str(int(now + duration_s) + 3600)},
                },
                ConditionExpression="attribute_not_exists(taskId) OR leaseUntil <= :now OR holder = :holder",
                ExpressionAttributeValues={":now": _number(now), ":holder": {"S": holder}},
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_lease(self, holder: str) -> None:
        """Give the lease up (only if ``holder`` still holds it)."""
        # If it expired and someone else holds it now, it is theirs to release: nothing to do.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self.table_name,
                Key={"taskId": {"S": LEASE_ID}},
                ConditionExpression="holder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )

    def lease_held(self) -> bool:
        """Whether a processor holds a live lease (a consistent read)."""
        answer = self._client.get_item(
            TableName=self.table_name, Key={"taskId": {"S": LEASE_ID}}, ConsistentRead=True
        )
        item = answer.get("Item")
        # Compared at the precision the lease is written with, so "not held" means "can be acquired".
        return item is not None and float(item["leaseUntil"]["N"]) > float(_number(self._clock())["N"])
