"""Lambda entry point: Kinesis (tumbling window) → race standings in DynamoDB."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumers.aggregator.core import InvocationSummary, WindowAggregator
from consumers.quarantine import SqsQuarantine
from consumers.settings import aggregator_settings
from leaderboard.adapters.dynamodb import CLIENT_CONFIG, DynamoRaceStore
from leaderboard.observability import logger, metrics, tracer

# Time kept back from the store's retries to raise and report the failure before the timeout does.
_REPORT_RESERVE_S = 3.0


@cache
def store() -> DynamoRaceStore:
    """The warm execution environment's race store (its client leaves retrying to the store)."""
    return DynamoRaceStore(boto3.client("dynamodb", config=CLIENT_CONFIG), aggregator_settings().table_name)


@cache
def aggregator() -> WindowAggregator:
    """The warm execution environment's aggregator (built on first use)."""
    settings = aggregator_settings()
    quarantine = SqsQuarantine(boto3.client("sqs"), settings.failure_queue_url)
    return WindowAggregator(store(), quarantine.send, settings.state_budget_bytes)


def _emit(summary: InvocationSummary) -> None:
    metrics.add_metric(name="RecordsAggregated", unit=MetricUnit.Count, value=summary.messages)
    metrics.add_metric(name="MalformedRecords", unit=MetricUnit.Count, value=summary.poison)
    if summary.report is not None:
        metrics.add_metric(name="StandingsWrites", unit=MetricUnit.Count, value=summary.report.items_written)
        metrics.add_metric(name="RacesMerged", unit=MetricUnit.Count, value=summary.report.races)
    if summary.early_flush:
        metrics.add_metric(name="WindowEarlyFlushes", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Accumulate the batch into the window state; merge into DynamoDB at the window's end.

    A merge that cannot finish in this invocation's time raises, so Lambda records a failed
    invocation and the mapping retries the window with the same state: never dropped.
    """
    remaining = context.get_remaining_time_in_millis() / 1000
    store().retry_until(time.monotonic() + max(remaining - _REPORT_RESERVE_S, remaining / 2))
    response, summary = aggregator().handle(event)
    if summary.poison:
        logger.warning("quarantined malformed records", extra={"count": summary.poison})
    if summary.terminated_early:
        logger.warning(
            "window terminated early by Lambda (state limit)", extra={"window": event.get("window")}
        )
    logger.debug(
        "aggregated batch",
        extra={
            "records": summary.records,
            "messages": summary.messages,
            "flushed": summary.flushed,
            "failed": summary.failed_records,
            "shard": event.get("shardId"),
        },
    )
    _emit(summary)
    return response
