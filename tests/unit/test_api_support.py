"""Helpers for the API tests: canonical API Gateway events, the table as the template creates it,
and a table filled through the real write path (DynamoRaceStore) from racer messages.

Named test_api_* so it sits with the API tests; it holds no tests itself.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.api import reset
from leaderboard.api.dependencies import get_service
from leaderboard.api.handler import lambda_handler
from leaderboard.domain import FinalResult, RacerMessage, WindowAccumulator

EVENTS = Path(__file__).resolve().parent.parent / "events"
TABLE = "alleycat-test-races"
SECRET = "test-cursor-secret-0123456789abcdef"
REGION = "us-east-1"
T0 = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)

# (path pattern, canonical event file, path parameter names)
_ROUTES = [
    (re.compile(r"^/races$"), "apigw_list_races.json", ()),
    (re.compile(r"^/races/([^/]+)/leaderboard$"), "apigw_race_leaderboard.json", ("raceId",)),
    (re.compile(r"^/races/([^/]+)/racers/([^/]+)$"), "apigw_racer_standing.json", ("raceId", "racerId")),
    (re.compile(r"^/classes/([^/]+)/leaderboard$"), "apigw_class_leaderboard.json", ("classId",)),
    (re.compile(r"^/openapi\.json$"), "apigw_openapi.json", ()),
]


def load_event(name: str) -> dict[str, Any]:
    """A canonical event from tests/events."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def api_event(path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
    """The canonical REST (payload 1.0) event of the route matching ``path``, re-targeted to it."""
    for pattern, name, params in _ROUTES:
        match = pattern.match(path)
        if match:
            event = copy.deepcopy(load_event(name))
            event["pathParameters"] = dict(zip(params, match.groups(), strict=True)) or None
            break
    else:  # an unknown route: API Gateway would need a {proxy+} resource to forward it
        event = copy.deepcopy(load_event("apigw_openapi.json"))
        event["resource"] = event["requestContext"]["resourcePath"] = "/{proxy+}"
        event["pathParameters"] = {"proxy": path.lstrip("/")}
    event["path"] = path
    event["requestContext"]["path"] = f"/{event['requestContext']['stage']}{path}"
    event["queryStringParameters"] = dict(query) if query else None
    event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} if query else None
    return event


class FakeLambdaContext:
    """What the powertools decorators read from the Lambda context."""

    function_name = "alleycat-api"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:alleycat-api"
    memory_limit_in_mb = 512
    aws_request_id = "5b441b59-a550-11c8-6564-f1c833cf438c"
    log_group_name = "/aws/lambda/alleycat-api"
    log_stream_name = "2026/11/21/[$LATEST]abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def create_table(client: Any, name: str = TABLE) -> None:
    """The race table exactly as template.yaml declares it."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, hash_key, range_key in (
                ("ByClass", "gsi1pk", "gsi1sk"),
                ("ByStatus", "gsi2pk", "gsi2sk"),
            )
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def message(
    race_id: int,
    racer_id: int,
    second: int,
    *,
    cadence: float = 60,
    resistance: float = 35,
    class_id: int = 3,
    name: str | None = None,
    final: bool = False,
) -> RacerMessage:
    """One racer message; output is (cadence + 35) * (resistance + 65) * 100 ten-thousandths."""
    return RacerMessage.model_validate(
        {
            "event": "final" if final else "update",
            "deviceTimestamp": 1_795_190_400_000 + second * 1000,
            "second": second,
            "raceId": race_id,
            "name": name or f"Racer {racer_id}",
            "racerId": racer_id,
            "classId": class_id,
            "cadence": cadence,
            "resistance": resistance,
        }
    )


def write_messages(store: DynamoRaceStore, messages: Iterable[RacerMessage]) -> None:
    """Fold messages into the table through the aggregator's write path (one window)."""
    window = WindowAccumulator()
    window.add_all(messages)
    for delta in window.races.values():
        store.merge(delta)


def personal_best(class_id: int, racer_id: int, total: int, race_id: int, *, name: str = "") -> FinalResult:
    """A personal-best candidate of ``total`` ten-thousandths."""
    return FinalResult(
        class_id=class_id,
        racer_id=racer_id,
        name=name or f"Racer {racer_id}",
        race_id=race_id,
        total=total,
        achieved_at=T0,
    )


@dataclass
class Answer:
    """An API answer, decoded."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class LocalApi:
    """The API handler in front of a moto table, and the store that fills the table."""

    store: DynamoRaceStore
    client: Any
    monkeypatch: pytest.MonkeyPatch
    reconfigured: bool = False

    def reconfigure(self, **env: str | None) -> None:
        """Change the function's environment (None unsets) as a redeploy would: cold start after."""
        for key, value in env.items():
            if value is None:
                self.monkeypatch.delenv(key, raising=False)
            else:
                self.monkeypatch.setenv(key, value)
        self.reconfigured = True
        reset()

    def get(self, path: str, **query: Any) -> Answer:
        """Invoke the handler with a GET event for ``path`` and query parameters."""
        event = api_event(path, {k: str(v) for k, v in query.items()} or None)
        response = lambda_handler(event, FakeLambdaContext())
        # A REST API proxy response; API Gateway answers 502 to anything else.
        assert set(response) >= {"statusCode", "body", "isBase64Encoded"}
        headers = {k: ", ".join(v) for k, v in (response.get("multiValueHeaders") or {}).items()}
        headers.update(response.get("headers") or {})
        body = json.loads(response["body"]) if response["body"] else None
        return Answer(status=response["statusCode"], body=body, headers=headers)


@contextmanager
def moto_table() -> Iterator[Any]:
    """An in-process moto DynamoDB with the race table; yields a client on it."""
    reset()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        try:
            yield client
        finally:
            reset()


def empty_table(client: Any, name: str = TABLE) -> None:
    """Delete every item, so one table can serve many tests (creating tables is the slow part)."""
    for page in client.get_paginator("scan").paginate(TableName=name, ProjectionExpression="pk, sk"):
        for item in page["Items"]:
            client.delete_item(TableName=name, Key={"pk": item["pk"], "sk": item["sk"]})


@contextmanager
def running_api(monkeypatch: pytest.MonkeyPatch, client: Any, **env: str) -> Iterator[LocalApi]:
    """The API configured for the (emptied) race table behind ``client``, its caches reset."""
    settings = {
        "TABLE_NAME": TABLE,
        "CURSOR_SECRET": SECRET,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "alleycat-api",
        "POWERTOOLS_METRICS_NAMESPACE": "Alleycat",
        # Every request re-reads the race version, so tests see each change at once; the
        # revalidation window has its own tests.
        "RANKING_REVALIDATE_MS": "0",
        **env,
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    empty_table(client)
    # A fresh table restarts race versions, so a warm ranking from an earlier test must not survive;
    # the app itself (slow to build) is rebuilt only when a test changes the settings.
    _forget(full=bool(env))
    store = DynamoRaceStore(client, TABLE, clock=lambda: T0, pb_concurrency=1)
    api = LocalApi(store=store, client=client, monkeypatch=monkeypatch)
    try:
        yield api
    finally:
        _forget(full=bool(env) or api.reconfigured)


def _forget(*, full: bool) -> None:
    if full:
        reset()
    else:
        get_service.cache_clear()
