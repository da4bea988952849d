"""The API against a real moto server over HTTP, as the deployed function talks to DynamoDB.

The table is filled through the aggregator's write path with a race of 1,200 racers (12 buckets, two
pages of 1,000); the API is configured only through its environment (AWS_ENDPOINT_URL included), as in
localcloud.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.api import reset
from leaderboard.api.handler import lambda_handler
from leaderboard.domain import RacerScore, rank_scores
from leaderboard.domain.messages import e4_to_output
from tests.unit.test_api_support import (
    REGION,
    SECRET,
    TABLE,
    FakeLambdaContext,
    api_event,
    create_table,
    message,
    personal_best,
    write_messages,
)

pytestmark = pytest.mark.integration

RACE = 900_001
RACERS = 1_200


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def seeded(endpoint: str) -> dict[int, int]:
    """The race and a class board in the server's table; returns racer -> total (ten-thousandths)."""
    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_table(client)
    store = DynamoRaceStore(client, TABLE)
    # Cadence cycles through 40 values, so most totals are shared by ~30 racers: many ties.
    messages = [message(RACE, r, s, cadence=40 + (r * 7 + s) % 40) for r in range(RACERS) for s in range(2)]
    write_messages(store, messages)
    store.record_results([personal_best(3, r, 1000 * (r % 7), race_id=RACE) for r in range(50)])
    return {r: sum((40 + (r * 7 + s) % 40 + 35) * 100 * 100 for s in range(2)) for r in range(RACERS)}


@pytest.fixture
def store(endpoint: str, seeded: dict[int, int]) -> DynamoRaceStore:
    """The aggregator's store on the server's table (for tests that change a race under the API)."""
    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return DynamoRaceStore(client, TABLE)


@pytest.fixture
def get(endpoint: str, seeded: dict[int, int], monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {
        "TABLE_NAME": TABLE,
        "CURSOR_SECRET": SECRET,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # Every request reads the race's version: what a new version changes shows at once.
        "RANKING_REVALIDATE_MS": "0",
    }.items():
        monkeypatch.setenv(key, value)
    reset()

    def invoke(path: str, **query: Any) -> tuple[int, Any]:
        event = api_event(path, {k: str(v) for k, v in query.items()} or None)
        response = lambda_handler(event, FakeLambdaContext())
        return response["statusCode"], json.loads(response["body"])

    yield invoke
    reset()


def test_paging_a_large_race_matches_the_ranking(get: Any, seeded: dict[int, int]) -> None:
    expected = rank_scores(RacerScore(racer_id=r, name=f"Racer {r}", total=t) for r, t in seeded.items())
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        status, body = get(f"/races/{RACE}/leaderboard", limit=1000, **({"cursor": cursor} if cursor else {}))
        assert status == 200, body
        rows += body["standings"]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert [(r["rank"], r["racerId"], r["totalOutput"]) for r in rows] == [
        (s.rank, s.racer_id, e4_to_output(s.total)) for s in expected
    ]


def test_racer_neighbourhood_and_lists(get: Any, seeded: dict[int, int]) -> None:
    status, body = get(f"/races/{RACE}/racers/1000", around=3)
    assert status == 200
    assert body["racer"]["racerId"] == 1000
    assert len(body["neighbours"]) == 7
    status, races = get("/races", classId=3)
    assert status == 200
    assert [(r["raceId"], r["racers"], r["status"]) for r in races["races"]] == [(RACE, RACERS, "live")]
    status, board = get("/classes/3/leaderboard", limit=10)
    assert status == 200
    assert [s["rank"] for s in board["standings"]] == [1] * 7 + [8, 8, 8]


def _pages(get: Any, race_id: int, limit: int) -> list[list[tuple[int, int, float]]]:
    """Every page of the race's leaderboard as (rank, racerId, totalOutput) rows."""
    pages: list[list[tuple[int, int, float]]] = []
    cursor = None
    for _ in range(100):  # a cursor that never ends the paging fails rather than loops
        status, body = get(
            f"/races/{race_id}/leaderboard", limit=limit, **({"cursor": cursor} if cursor else {})
        )
        assert status == 200, body
        pages.append([(r["rank"], r["racerId"], r["totalOutput"]) for r in body["standings"]])
        cursor = body["nextCursor"]
        if cursor is None:
            return pages
    raise AssertionError("the leaderboard never reached its last page")


def test_a_finished_race_served_again_from_the_warm_cache_keeps_exact_standings(
    get: Any, store: DynamoRaceStore
) -> None:
    # Given a finished race of 250 racers with ties
    race_id = RACE + 1
    totals = {r: (40 + r % 9 + 35) * 100 * 100 for r in range(250)}
    write_messages(store, [message(race_id, r, 1, cadence=40 + r % 9) for r in range(250)])
    summary = store.get_race(race_id)
    assert summary is not None and store.close_race(race_id, summary.version)
    expected = [
        (s.rank, s.racer_id, e4_to_output(s.total))
        for s in rank_scores(RacerScore(racer_id=r, name=f"Racer {r}", total=t) for r, t in totals.items())
    ]
    # When every page is read three times (the later reads are built once and kept per ranking)
    reads = [_pages(get, race_id, limit=100) for _ in range(3)]
    # Then each read has the exact standings, page by page
    for pages in reads:
        assert [row for page in pages for row in page] == expected
        assert [len(page) for page in pages] == [100, 100, 50]
    status, body = get(f"/races/{race_id}/leaderboard", limit=100)
    assert status == 200 and body["status"] == "final"


def test_a_new_version_of_a_live_race_replaces_its_cached_pages(get: Any, store: DynamoRaceStore) -> None:
    # Given a live race whose top page the API has served (and kept)
    race_id = RACE + 2
    write_messages(store, [message(race_id, r, 1, cadence=40 + r) for r in range(20)])
    status, before = get(f"/races/{race_id}/leaderboard", limit=5)
    assert status == 200
    assert [r["racerId"] for r in before["standings"]] == [19, 18, 17, 16, 15]
    # When a new window lifts the last racer to the top (a new version of the race)
    write_messages(store, [message(race_id, 0, 2, cadence=200, resistance=200)])
    # Then the next request shows the new standings, not the kept page
    status, after = get(f"/races/{race_id}/leaderboard", limit=5)
    assert status == 200
    assert [r["racerId"] for r in after["standings"]] == [0, 19, 18, 17, 16]
    assert after["standings"][0]["second"] == 2
    assert after["updatedAt"] >= before["updatedAt"]
