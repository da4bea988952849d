"""Lambda entry point: DynamoDB Streams (race summaries) → live standings on AWS IoT Core topics."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumers.publisher.core import StandingsPublisher
from consumers.settings import publisher_settings
from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.observability import logger, metrics, tracer


def _iot_data_client(configured_endpoint: str) -> Any:
    """An iot-data client for the account's data endpoint (looked up when not configured)."""
    endpoint = configured_endpoint
    if not endpoint:
        address = boto3.client("iot").describe_endpoint(endpointType="iot:Data-ATS")["endpointAddress"]
        endpoint = f"https://{address}"
    return boto3.client("iot-data", endpoint_url=endpoint)


@cache
def publisher() -> StandingsPublisher:
    """The warm execution environment's publisher (built on first use)."""
    settings = publisher_settings()
    store = DynamoRaceStore(boto3.client("dynamodb"), settings.table_name)
    iot = _iot_data_client(settings.iot_data_endpoint)

    def publish(topic: str, payload: bytes) -> None:
        iot.publish(topic=topic, qos=1, payload=payload)

    return StandingsPublisher(
        store,
        publish,
        topic_prefix=settings.topic_prefix,
        top_n=settings.top_n,
        now_ms=lambda: time.time_ns() // 1_000_000,
    )


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Publish the standings of every race whose summary changed in this batch."""
    response, summary = publisher().handle(event)
    metrics.add_metric(name="StandingsPublished", unit=MetricUnit.Count, value=summary.standings_published)
    for freshness in summary.freshness_ms or []:
        # From the newest racer message in the standings to their publication.
        metrics.add_metric(name="Freshness", unit=MetricUnit.Milliseconds, value=freshness)
    return response
