"""The FIFO baseline (for the benchmark): an SQS queue feeding the same legacy system, oldest first.

Messages older than the queue's TTL are dropped without calling the legacy system, so both queues
shed the same work and differ only in order.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from lifo_queue.legacy import LegacySystem
from lifo_queue.observability import logger, metrics, tracer
from lifo_queue.settings import FifoSettings

processor = BatchProcessor(event_type=EventType.SQS)


@cache
def _settings() -> FifoSettings:
    return FifoSettings.from_environment()


@cache
def _legacy() -> LegacySystem:
    settings = _settings()
    return LegacySystem(settings.legacy_capacity_per_s, settings.legacy_ledger_path)


def _validate(record: SQSRecord) -> None:
    task = json.loads(record.body)
    if time.time() - float(task["created"]) >= _settings().task_ttl_s:
        return  # shed, as TTL sheds it from the LIFO table
    _legacy().validate(task["taskId"], float(task["created"]), task.get("payload", {}), "fifo")


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Validate each message's task in arrival order."""
    return process_partial_response(
        event=event, record_handler=_validate, processor=processor, context=context
    )
