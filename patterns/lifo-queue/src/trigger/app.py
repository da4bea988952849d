"""The trigger function: wakes the processor when work may be waiting.

Invoked by the table's stream (a task became PENDING), by tail calls on the SNS topic (a run ended
with work left) and by a schedule (a watchdog, should a run have died holding the lease). It starts
the processor asynchronously only when no live processing lease is held; the processor's reserved
concurrency (1) and its conditional lease keep simultaneous wake-ups down to one run.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from lifo_queue.observability import logger, metrics, tracer
from lifo_queue.settings import TriggerSettings
from lifo_queue.store import TaskStore


@cache
def _settings() -> TriggerSettings:
    return TriggerSettings.from_environment()


@cache
def _clients() -> tuple[Any, Any]:
    return boto3.client("dynamodb"), boto3.client("lambda")


def wake_reason(event: dict[str, Any]) -> str:
    """What woke the trigger: "tail-call", "stream", "schedule" or "unknown"."""
    records = event.get("Records") or []
    if records and records[0].get("EventSource") == "aws:sns":
        return "tail-call"
    if records and records[0].get("eventSource") == "aws:dynamodb":
        return "stream"
    if event.get("source") == "aws.events":
        return "schedule"
    return "unknown"


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Start one processing run unless one is running."""
    settings = _settings()
    dynamodb, lambda_client = _clients()
    reason = wake_reason(event)
    if TaskStore(dynamodb, settings.table_name).lease_held():
        # A run is working the queue; it ends with a tail call if work remains.
        metrics.add_metric(name="WakeUpsSkipped", unit=MetricUnit.Count, value=1)
        logger.debug("processor busy", extra={"reason": reason})
        return {"started": False, "reason": reason}
    lambda_client.invoke(
        FunctionName=settings.processor_function,
        InvocationType="Event",
        Payload=json.dumps({"reason": reason}).encode(),
    )
    metrics.add_metric(name="ProcessorStarts", unit=MetricUnit.Count, value=1)
    logger.info("processor started", extra={"reason": reason})
    return {"started": True, "reason": reason}
