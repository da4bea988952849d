"""The HTTP surface: routes, parameter validation, and the one place exceptions become responses.

Routes live on a module-level :class:`Router` (no configuration needed); :func:`get_app` builds the
resolver at first use, because CORS comes from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache
from http import HTTPStatus
from typing import Annotated, Any

import orjson
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFoundError
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import Server
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from botocore.exceptions import ClientError

from leaderboard.api.cursor import MAX_CURSOR_LENGTH
from leaderboard.api.dependencies import get_cursors, get_service, get_settings
from leaderboard.api.errors import InvalidCursorError, NotFoundError
from leaderboard.api.models import (
    ApiModel,
    ClassLeaderboard,
    ErrorBody,
    RaceLeaderboard,
    RaceList,
    RacerNeighbourhood,
)
from leaderboard.observability import logger

API_TITLE = "Alleycat Leaderboard API"
API_VERSION = "1.0.0"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_AROUND = 5
MAX_AROUND = 50
# Ids are 64-bit integers; the bound also keeps absurd ids from reaching DynamoDB's key-size limit.
MAX_ID = 2**63 - 1

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page (1-1000).")]
Cursor = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="`nextCursor` of the previous page. Opaque; valid only for the request it came from.",
    ),
]
RaceId = Annotated[int, Path(alias="raceId", ge=1, le=MAX_ID)]
RacerId = Annotated[int, Path(alias="racerId", ge=0, le=MAX_ID)]
ClassId = Annotated[int, Path(alias="classId", ge=0, le=MAX_ID)]


def _json(model: type[ApiModel], description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


def _responses(ok: type[ApiModel], *errors: tuple[int, str]) -> dict[int, OpenAPIResponse]:
    """The route's documented answers; powertools documents only these once any are given.

    Every route can also answer 500 and 503 (the exception table below), so both are declared:
    a client reading the document must know a throttled read is 503 with ``Retry-After``.
    """
    documented = {
        HTTPStatus.OK.value: _json(ok, "Success."),
        HTTPStatus.UNPROCESSABLE_ENTITY.value: _json(ErrorBody, "A parameter is missing or out of range."),
        HTTPStatus.INTERNAL_SERVER_ERROR.value: _json(ErrorBody, "An unexpected error (details in the log)."),
        HTTPStatus.SERVICE_UNAVAILABLE.value: _BUSY,
    }
    documented.update((status, _json(ErrorBody, description)) for status, description in errors)
    return documented


_THROTTLING = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}
)
_BAD_CURSOR = (400, "The cursor is garbled, tampered with, or was issued for another request.")
_BUSY: OpenAPIResponse = {
    **_json(ErrorBody, "DynamoDB is still throttling after retries; try again after Retry-After."),
    "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
}

router = Router()  # type: ignore[no-untyped-call]  # powertools leaves __init__ unannotated


@router.get(
    "/races",
    summary="List races",
    description="Races newest start first (ties: higher raceId first): of one class, or (without classId) "
    "of every class.",
    tags=["races"],
    responses=_responses(RaceList, _BAD_CURSOR),
)
def list_races(
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    class_id: Annotated[int | None, Query(alias="classId", ge=0, le=MAX_ID)] = None,
) -> RaceList:
    """GET /races."""
    return get_service().race_list(class_id, limit, cursor)


@router.get(
    "/races/<raceId>/leaderboard",
    summary="A race's leaderboard",
    description="Standings by totalOutput descending; equal totals share a rank and are ordered by racerId.",
    tags=["races"],
    responses=_responses(RaceLeaderboard, _BAD_CURSOR, (404, "Unknown race.")),
)
def race_leaderboard(race_id: RaceId, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> RaceLeaderboard:
    """GET /races/{raceId}/leaderboard."""
    return get_service().race_leaderboard(race_id, limit, cursor)


@router.get(
    "/races/<raceId>/racers/<racerId>",
    summary="A racer's standing and neighbours",
    description="The racer's rank and score, with `around` racers each side.",
    tags=["races"],
    responses=_responses(RacerNeighbourhood, (404, "Unknown race, or no such racer in the race.")),
)
def racer_standing(
    race_id: RaceId,
    racer_id: RacerId,
    around: Annotated[
        int, Query(ge=0, le=MAX_AROUND, description="Neighbours each side (0-50).")
    ] = DEFAULT_AROUND,
) -> RacerNeighbourhood:
    """GET /races/{raceId}/racers/{racerId}."""
    return get_service().racer_neighbourhood(race_id, racer_id, around)


@router.get(
    "/classes/<classId>/leaderboard",
    summary="A class's all-time personal bests",
    description="Each racer's best totalOutput in the class, ranked like a race (ties share a rank).",
    tags=["classes"],
    responses=_responses(ClassLeaderboard, _BAD_CURSOR),
)
def class_leaderboard(
    class_id: ClassId, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> ClassLeaderboard:
    """GET /classes/{classId}/leaderboard."""
    return get_service().class_leaderboard(class_id, limit, cursor)


def _message(status: HTTPStatus, message: str) -> Response[dict[str, Any]]:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"message": message},
    )


def _validation_message(exc: RequestValidationError) -> str:
    """``limit (query): Input should be ...`` for each problem; inputs are never echoed."""
    problems = []
    for error in exc.errors():
        where = [str(part) for part in error.get("loc", ())]
        name = where[-1] if where else "request"
        source = f" ({where[0]})" if len(where) > 1 else ""
        problems.append(f"{name}{source}: {error.get('msg', 'invalid value')}")
    return "invalid request: " + "; ".join(problems)


def _invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
    return _message(HTTPStatus.UNPROCESSABLE_ENTITY, _validation_message(exc))


def _invalid_cursor(exc: InvalidCursorError) -> Response[dict[str, Any]]:
    return _message(HTTPStatus.BAD_REQUEST, str(exc))


def _not_found(exc: NotFoundError) -> Response[dict[str, Any]]:
    return _message(HTTPStatus.NOT_FOUND, str(exc))


def _service_error(exc: ServiceError) -> Response[dict[str, Any]]:
    return _message(HTTPStatus(exc.status_code), exc.msg if isinstance(exc.msg, str) else "request failed")


def _aws_error(exc: ClientError) -> Response[dict[str, Any]]:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _THROTTLING:
        # botocore already retried; tell the client to come back rather than blame the request.
        logger.warning("throttled by DynamoDB", extra={"code": code})
        response = _message(HTTPStatus.SERVICE_UNAVAILABLE, "busy, try again shortly")
        response.headers["Retry-After"] = "1"
        return response
    return _unexpected(exc)


def _unexpected(exc: Exception) -> Response[dict[str, Any]]:
    # Our fault, not the client's: log the details, answer without them.
    logger.exception("unhandled error", exc_info=exc)
    return _message(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


# The one place exceptions become HTTP answers; the most specific class in an exception's MRO wins.
ERROR_HANDLERS: dict[type[Exception], Callable[[Any], Response[dict[str, Any]]]] = {
    RequestValidationError: _invalid_request,
    InvalidCursorError: _invalid_cursor,
    NotFoundError: _not_found,
    ServiceError: _service_error,
    ClientError: _aws_error,
    Exception: _unexpected,
}


def _no_route(app: APIGatewayRestResolver) -> Callable[[RouteNotFoundError], Response[dict[str, Any]]]:
    def answer(_: RouteNotFoundError) -> Response[dict[str, Any]]:
        event = app.current_event
        return _message(HTTPStatus.NOT_FOUND, f"no route for {event.http_method} {event.path}")

    return answer


_EXECUTE_API_DOMAIN = re.compile(r"^[a-z0-9]+\.execute-api\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")


def server_url(stage: str | None, domain_name: str | None) -> str:
    """The API's base URL for OpenAPI's ``servers``, from what API Gateway says in requestContext.

    On API Gateway's own domain the routes live under the stage: ``https://<domain>/<stage>``. Behind
    a custom domain the base path mapping, not the stage, decides the prefix, and locally the
    gateway's address is not the domain name; there, the stage path (``/Prod``) is what is known.
    """
    if not stage:
        return "/"
    if domain_name and _EXECUTE_API_DOMAIN.match(domain_name):
        return f"https://{domain_name}/{stage}"
    return f"/{stage}"


def json_body(value: Any) -> str:
    """A response body as compact JSON: orjson, ~10x faster than the standard library on a page of
    standings (the bodies are validated plain data by then)."""
    return orjson.dumps(value).decode()


@cache
def get_app() -> APIGatewayRestResolver:
    """The resolver, built on first use from the settings."""
    settings = get_settings()
    app = APIGatewayRestResolver(
        cors=CORSConfig(allow_origin=settings.cors_allow_origin, max_age=300),
        enable_validation=True,
        serializer=json_body,
    )
    app.include_router(router)
    app.exception_handler_manager.update_exception_handlers(
        {**ERROR_HANDLERS, RouteNotFoundError: _no_route(app)}
    )

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        context = app.current_event.request_context
        return Response(
            status_code=HTTPStatus.OK.value,
            content_type=content_types.APPLICATION_JSON,
            body=openapi_json(server_url(context.stage, context.domain_name)),
        )

    @lru_cache(maxsize=8)
    def openapi_json(server: str) -> str:
        return app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description="Live and final race leaderboards and class personal-best boards.",
            servers=[Server(url=server)],
        )

    return app


def reset() -> None:
    """Forget the app, service and settings, so the next request rebuilds them from the environment."""
    get_app.cache_clear()
    get_service.cache_clear()
    get_cursors.cache_clear()
    get_settings.cache_clear()
