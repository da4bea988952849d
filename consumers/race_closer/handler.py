"""Lambda entry point (scheduled): close races whose final messages never arrived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from consumers.settings import race_closer_settings
from leaderboard.adapters.dynamodb import CLIENT_CONFIG, DynamoRaceStore
from leaderboard.domain import close_stale_races
from leaderboard.observability import logger, metrics, tracer


@cache
def store() -> DynamoRaceStore:
    """The warm execution environment's race store (built on first use)."""
    return DynamoRaceStore(boto3.client("dynamodb", config=CLIENT_CONFIG), race_closer_settings().table_name)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Close every live race idle for longer than the grace period; report which."""
    grace = timedelta(seconds=race_closer_settings().grace_seconds)
    closed = close_stale_races(store(), datetime.now(UTC), grace)
    metrics.add_metric(name="RacesClosed", unit=MetricUnit.Count, value=len(closed))
    # Sampled once a minute by the schedule: how many races are running right now.
    metrics.add_metric(name="RacesLive", unit=MetricUnit.Count, value=sum(1 for _ in store().live_races()))
    if closed:
        logger.info("closed idle races", extra={"raceIds": closed})
    return {"closed": closed}
