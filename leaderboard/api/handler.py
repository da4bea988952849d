"""Lambda entry point of the leaderboard API (API Gateway REST API, payload 1.0)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from leaderboard.api.app import get_app
from leaderboard.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
# Bodies can hold 1,000 standings: too big to be worth a trace segment.
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Route one API Gateway request."""
    return get_app().resolve(event, context)
