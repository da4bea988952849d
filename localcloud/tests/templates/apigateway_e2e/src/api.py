"""powertools resolvers behind a REST API (payload 1.0) and an HTTP API (payload 2.0)."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, APIGatewayRestResolver

rest = APIGatewayRestResolver()
http = APIGatewayHttpResolver()


@rest.get("/races/<race_id>")
def rest_race(race_id: str) -> dict[str, Any]:
    event = rest.current_event
    return {
        "race": race_id,
        "laps": event.get_multi_value_query_string_values("lap"),
        "stage": event.request_context.stage,
        "function": os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
    }


@http.get("/races/<race_id>")
def http_race(race_id: str) -> dict[str, Any]:
    event = http.current_event
    return {"race": race_id, "route": event.route_key, "lap": event.get_query_string_value("lap")}


def rest_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """REST API entry point."""
    return rest.resolve(event, context)


def http_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """HTTP API entry point."""
    return http.resolve(event, context)
