"""The processing function (reserved concurrency 1): works the queue newest-first for one window.

Invoked asynchronously by the trigger function. It takes the processing lease or returns at once,
so a tail call and a stream event arriving together never make two runs.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from lifo_queue.legacy import LegacySystem
from lifo_queue.observability import logger, metrics, tracer
from lifo_queue.processing import process_queue
from lifo_queue.settings import ProcessorSettings
from lifo_queue.store import TaskStore


@cache
def _settings() -> ProcessorSettings:
    return ProcessorSettings.from_environment()


@cache
def _legacy() -> LegacySystem:
    # One per execution environment: with reserved concurrency 1, the legacy capacity is honoured.
    settings = _settings()
    return LegacySystem(settings.legacy_capacity_per_s, settings.legacy_ledger_path)


@cache
def _clients() -> tuple[Any, Any]:
    return boto3.client("dynamodb"), boto3.client("sns")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process tasks for up to the processing window; publish a tail call if work remains."""
    settings = _settings()
    dynamodb, sns = _clients()
    store = TaskStore(dynamodb, settings.table_name)
    # Leave time to release the lease and publish the tail call before Lambda's timeout.
    window_s = min(settings.processing_window_s, context.get_remaining_time_in_millis() / 1000 - 5)

    def tail_call() -> None:
        sns.publish(
            TopicArn=settings.tail_call_topic_arn, Message=json.dumps({"tailCall": context.aws_request_id})
        )

    report = process_queue(
        store,
        _legacy(),
        runner_id=context.aws_request_id,
        window_s=window_s,
        max_attempts=settings.max_attempts,
        tail_call=tail_call,
    )
    if not report.leased:
        logger.info("another run holds the processing lease", extra={"reason": event.get("reason")})
        metrics.add_metric(name="LeaseBusy", unit=MetricUnit.Count, value=1)
        return {"leased": False}
    metrics.add_metric(name="TasksProcessed", unit=MetricUnit.Count, value=report.processed)
    metrics.add_metric(name="TailCalls", unit=MetricUnit.Count, value=int(report.tail_call))
    logger.info(
        "processing run done",
        extra={
            "processed": report.processed,
            "outcomes": report.outcomes,
            "refused": report.refused,
            "tailCall": report.tail_call,
        },
    )
    return {"leased": True, "processed": report.processed, "tailCall": report.tail_call}
