"""The API handler end to end against a moto table filled through the real write path.

Each test builds races from racer messages with DynamoRaceStore (as the aggregator does), invokes
``lambda_handler`` with canonical API Gateway REST events and checks the HTTP answer.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.adapters.queries import DynamoLeaderboardQueries
from leaderboard.api import ConfigurationError
from leaderboard.api.app import server_url
from leaderboard.api.handler import lambda_handler
from leaderboard.domain import RacerMessage
from tests.unit.test_api_support import (
    TABLE,
    FakeLambdaContext,
    LocalApi,
    api_event,
    message,
    moto_table,
    personal_best,
    running_api,
    write_messages,
)


@pytest.fixture(scope="module")
def table() -> Iterator[Any]:
    with moto_table() as client:
        yield client


@pytest.fixture
def api(table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalApi]:
    with running_api(monkeypatch, table) as local:
        yield local


T1 = datetime(2026, 11, 21, 16, 5, tzinfo=UTC)


def ride(
    race_id: int,
    racer_id: int,
    cadences: list[int],
    *,
    class_id: int = 3,
    final: bool = False,
    start: int = 0,
) -> list[RacerMessage]:
    """One racer's messages, one per second from ``start``; resistance 35 makes output = cadence + 35."""
    last = start + len(cadences) - 1
    return [
        message(race_id, racer_id, start + i, cadence=c, class_id=class_id, final=final and start + i == last)
        for i, c in enumerate(cadences)
    ]


def all_pages(api: LocalApi, path: str, key: str, **query: Any) -> list[list[dict[str, Any]]]:
    """Follow nextCursor to the end; every page must be a 200."""
    pages = []
    cursor = None
    while True:
        answer = api.get(path, **query, **({"cursor": cursor} if cursor else {}))
        assert answer.status == 200, answer.body
        pages.append(answer.body[key])
        cursor = answer.body["nextCursor"]
        if cursor is None:
            return pages


def tamper(cursor: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[len(raw) // 3] ^= 0x04
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


# -- race leaderboard -------------------------------------------------------------------------------


def test_leaderboard_ranks_ties_per_the_contract(api: LocalApi) -> None:
    # Given racers 11 and 10 on equal totals, 12 lower and 13 higher by racerId but lowest
    write_messages(
        api.store,
        ride(7, 11, [60, 60]) + ride(7, 10, [70, 50]) + ride(7, 12, [40, 40]) + ride(7, 13, [10]),
    )
    # When the leaderboard is read
    answer = api.get("/races/7/leaderboard")
    # Then equal totals share rank 1 in racerId order and the next rank skips to 3
    assert answer.status == 200
    body = answer.body
    assert {k: body[k] for k in ("raceId", "classId", "status", "nextCursor")} == {
        "raceId": 7,
        "classId": 3,
        "status": "live",
        "nextCursor": None,
    }
    assert body["updatedAt"] == "2026-11-21T16:00:00.000Z"
    assert [(s["rank"], s["racerId"]) for s in body["standings"]] == [(1, 10), (1, 11), (3, 12), (4, 13)]
    assert body["standings"][0] == {
        "rank": 1,
        "racerId": 10,
        "name": "Racer 10",
        "totalOutput": 190.0,  # (70 + 35) + (50 + 35)
        "output": 85.0,  # the latest second's output
        "second": 1,
    }


def test_whole_efforts_keep_their_two_decimals(api: LocalApi) -> None:
    # (61 + 35) * (36 + 65) / 100 = 96.96
    write_messages(api.store, [message(7, 1, 0, cadence=61, resistance=36)])
    standing = api.get("/races/7/leaderboard").body["standings"][0]
    assert (standing["totalOutput"], standing["output"]) == (96.96, 96.96)


def test_fractional_outputs_keep_four_decimals_rounded_like_the_original(api: LocalApi) -> None:
    # Given seconds whose outputs print as 94.41125 (binary: just below) and 56.385349999999995
    # (parses back to a half once shifted), which the original sample rounds up to 94.4113 and 56.3854
    write_messages(
        api.store,
        [
            message(7, 1, 1, cadence=82.5, resistance=15.35),
            message(7, 1, 2, cadence=22.95, resistance=32.3),
        ],
    )
    # When the leaderboard is read
    standing = api.get("/races/7/leaderboard").body["standings"][0]
    # Then the total is their exact sum at four decimals and the latest output is the second's own
    assert (standing["totalOutput"], standing["output"]) == (150.7967, 56.3854)


def test_race_is_final_when_every_racer_finished(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [50, 50], final=True) + ride(7, 2, [60], final=True))
    assert api.get("/races/7/leaderboard").body["status"] == "final"


def test_pages_give_every_racer_exactly_once_in_rank_order(api: LocalApi) -> None:
    # Given 23 racers with plenty of ties
    write_messages(api.store, [m for r in range(23) for m in ride(7, r, [40 + (r * 7) % 5])])
    full = api.get("/races/7/leaderboard", limit=1000).body["standings"]
    # When read 5 at a time
    pages = all_pages(api, "/races/7/leaderboard", "standings", limit=5)
    # Then the pages concatenate to the full board, ranks included
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [s for page in pages for s in page] == full
    assert sorted(s["racerId"] for s in full) == list(range(23))


def test_next_page_continues_after_the_last_row_even_when_scores_change(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [90]) + ride(7, 2, [80]) + ride(7, 3, [70]) + ride(7, 4, [60]))
    first = api.get("/races/7/leaderboard", limit=2).body
    assert [s["racerId"] for s in first["standings"]] == [1, 2]
    # When racer 4 overtakes everybody before the next page is read
    write_messages(api.store, ride(7, 4, [100, 100], start=1))
    second = api.get("/races/7/leaderboard", limit=2, cursor=first["nextCursor"]).body
    # Then the page starts after racer 2's sort key (an offset would repeat racer 2)
    assert [(s["rank"], s["racerId"]) for s in second["standings"]] == [(4, 3)]
    assert second["nextCursor"] is None


def test_warm_reads_reuse_the_ranking_until_the_race_changes(
    api: LocalApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[int] = []
    real_load = DynamoRaceStore.load_scores

    def counting_load(self: DynamoRaceStore, race_id: int) -> Any:
        loads.append(race_id)
        return real_load(self, race_id)

    monkeypatch.setattr(DynamoRaceStore, "load_scores", counting_load)
    write_messages(api.store, ride(7, 1, [50]) + ride(7, 2, [60]))
    api.get("/races/7/leaderboard")
    api.get("/races/7/leaderboard", limit=1)
    api.get("/races/7/racers/1")
    assert loads == [7]
    # When the race changes, Then the next read ranks the new scores
    write_messages(api.store, ride(7, 1, [90], start=1))
    body = api.get("/races/7/leaderboard").body
    assert loads == [7, 7]
    assert [s["racerId"] for s in body["standings"]] == [1, 2]


def test_status_and_update_time_follow_the_race(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [50]) + ride(7, 2, [60]))
    assert api.get("/races/7/leaderboard").body["status"] == "live"
    # When the last racers finish (a later write, so a later updatedAt)
    api.store = DynamoRaceStore(api.client, TABLE, clock=lambda: T1)
    write_messages(api.store, ride(7, 1, [50], start=1, final=True) + ride(7, 2, [60], start=1, final=True))
    for path in ("/races/7/leaderboard", "/races/7/racers/1"):
        body = api.get(path).body
        assert (body["status"], body["updatedAt"]) == ("final", "2026-11-21T16:05:00.000Z")


def test_unknown_race_is_404(api: LocalApi) -> None:
    answer = api.get("/races/404/leaderboard")
    assert answer.status == 404
    assert answer.body == {"message": "race 404 not found"}


def test_empty_cursor_is_a_client_error(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [50]))
    answer = api.get("/races/7/leaderboard", cursor="")
    assert answer.status == 422
    assert "cursor" in answer.body["message"]


# -- racer and neighbours ---------------------------------------------------------------------------


def test_racer_with_neighbours_each_side(api: LocalApi) -> None:
    # Racer r has cadence 100 - r: racer 0 leads, racer 9 is last
    write_messages(api.store, [m for r in range(10) for m in ride(7, r, [100 - r])])
    answer = api.get("/races/7/racers/5", around=2)
    assert answer.status == 200
    body = answer.body
    assert (body["raceId"], body["classId"], body["status"]) == (7, 3, "live")
    assert body["racer"] == {
        "rank": 6,
        "racerId": 5,
        "name": "Racer 5",
        "totalOutput": 130.0,
        "output": 130.0,
        "second": 0,
    }
    assert [(s["rank"], s["racerId"]) for s in body["neighbours"]] == [(4, 3), (5, 4), (6, 5), (7, 6), (8, 7)]


def test_neighbours_default_to_five_and_clip_at_the_ends(api: LocalApi) -> None:
    write_messages(api.store, [m for r in range(10) for m in ride(7, r, [100 - r])])
    top = api.get("/races/7/racers/0").body["neighbours"]
    assert [s["racerId"] for s in top] == [0, 1, 2, 3, 4, 5]
    alone = api.get("/races/7/racers/9", around=0).body["neighbours"]
    assert [s["racerId"] for s in alone] == [9]


def test_unknown_racer_and_unknown_race_are_404(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [50]))
    racer = api.get("/races/7/racers/2")
    assert (racer.status, racer.body) == (404, {"message": "racer 2 not found in race 7"})
    assert api.get("/races/8/racers/1").status == 404


# -- races -------------------------------------------------------------------------------------------


def seed_races(api: LocalApi) -> None:
    """Races 101..108: odd ones class 3, even ones class 4; 102, 105 and 107 final."""
    messages = []
    for race_id in range(101, 109):
        final = race_id in (102, 105, 107)
        messages += ride(race_id, 1, [50], class_id=3 if race_id % 2 else 4, final=final)
    write_messages(api.store, messages)


def test_races_newest_first_across_statuses(api: LocalApi) -> None:
    seed_races(api)
    body = api.get("/races").body
    assert [r["raceId"] for r in body["races"]] == list(range(108, 100, -1))
    assert body["nextCursor"] is None
    assert body["races"][1] == {
        "raceId": 107,
        "classId": 3,
        "status": "final",
        "racers": 1,
        "updatedAt": "2026-11-21T16:00:00.000Z",
    }
    assert {r["raceId"] for r in body["races"] if r["status"] == "final"} == {102, 105, 107}


def test_races_of_one_class_paged(api: LocalApi) -> None:
    seed_races(api)
    pages = all_pages(api, "/races", "races", classId=3, limit=3)
    assert [[r["raceId"] for r in page] for page in pages] == [[107, 105, 103], [101]]
    assert all(r["classId"] == 3 for page in pages for r in page)


def test_race_turning_final_between_pages_is_listed_once(api: LocalApi) -> None:
    write_messages(api.store, [m for race_id in (1, 2, 3, 4) for m in ride(race_id, 1, [50])])
    first = api.get("/races", limit=2).body
    assert [r["raceId"] for r in first["races"]] == [4, 3]
    # When race 2 finishes before the next page
    write_messages(api.store, ride(2, 1, [50], start=1, final=True))
    second = api.get("/races", limit=2, cursor=first["nextCursor"]).body
    assert [(r["raceId"], r["status"]) for r in second["races"]] == [(2, "final"), (1, "live")]


def test_no_races_is_an_empty_list(api: LocalApi) -> None:
    assert api.get("/races").body == {"races": [], "nextCursor": None}


# -- class personal bests ----------------------------------------------------------------------------


def test_class_board_keeps_each_racers_best(api: LocalApi) -> None:
    api.store.record_results(
        [personal_best(3, 1, 5_000_000, race_id=10), personal_best(3, 2, 4_000_000, race_id=10)]
    )
    # A worse result does not replace a best; a better one does
    api.store.record_results(
        [personal_best(3, 1, 1_000_000, race_id=11), personal_best(3, 2, 6_000_000, race_id=11)]
    )
    # Other classes stay out
    api.store.record_results([personal_best(4, 3, 9_900_000, race_id=12)])
    body = api.get("/classes/3/leaderboard").body
    assert body == {
        "classId": 3,
        "standings": [
            {
                "rank": 1,
                "racerId": 2,
                "name": "Racer 2",
                "totalOutput": 600.0,
                "raceId": 11,
                "achievedAt": "2026-11-21T16:00:00.000Z",
            },
            {
                "rank": 2,
                "racerId": 1,
                "name": "Racer 1",
                "totalOutput": 500.0,
                "raceId": 10,
                "achievedAt": "2026-11-21T16:00:00.000Z",
            },
        ],
        "nextCursor": None,
    }


def test_class_board_ranks_ties_across_page_boundaries(api: LocalApi) -> None:
    totals = {1: 900, 2: 700, 3: 700, 4: 700, 5: 500, 6: 500, 7: 100}
    api.store.record_results([personal_best(3, r, t, race_id=10) for r, t in totals.items()])
    pages = all_pages(api, "/classes/3/leaderboard", "standings", limit=2)
    rows = [(s["rank"], s["racerId"]) for page in pages for s in page]
    assert rows == [(1, 1), (2, 2), (2, 3), (2, 4), (5, 5), (5, 6), (7, 7)]
    assert [len(p) for p in pages] == [2, 2, 2, 1]


def test_class_board_of_an_unknown_class_is_empty(api: LocalApi) -> None:
    api.store.record_results([personal_best(3, 1, 900, race_id=10)])
    assert api.get("/classes/9/leaderboard").body == {"classId": 9, "standings": [], "nextCursor": None}


# -- client mistakes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "names"),
    [
        ("/races/abc/leaderboard", {}, "raceId"),
        ("/races/1.5/leaderboard", {}, "raceId"),
        ("/races/0/leaderboard", {}, "raceId"),
        ("/races/7/racers/x", {}, "racerId"),
        ("/classes/three/leaderboard", {}, "classId"),
        ("/races", {"classId": "x"}, "classId"),
        ("/races/7/leaderboard", {"limit": "0"}, "limit"),
        ("/races/7/leaderboard", {"limit": "1001"}, "limit"),
        ("/races/7/leaderboard", {"limit": "ten"}, "limit"),
        ("/races", {"limit": "0"}, "limit"),
        ("/classes/3/leaderboard", {"limit": "1001"}, "limit"),
        ("/races/7/racers/1", {"around": "51"}, "around"),
        ("/races/7/racers/1", {"around": "-1"}, "around"),
        ("/races/99999999999999999999/leaderboard", {}, "raceId"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    api: LocalApi, path: str, query: dict[str, str], names: str
) -> None:
    write_messages(api.store, ride(7, 1, [50]))
    answer = api.get(path, **query)
    assert answer.status == 422
    assert set(answer.body) == {"message"}
    assert names in answer.body["message"]


def test_limit_bounds_are_inclusive(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [50]))
    assert api.get("/races/7/leaderboard", limit=1).status == 200
    assert api.get("/races/7/leaderboard", limit=1000).status == 200
    assert api.get("/races/7/racers/1", around=50).status == 200


def test_garbled_tampered_and_foreign_cursors_are_400(api: LocalApi) -> None:
    write_messages(api.store, [m for race_id in range(1, 6) for m in ride(race_id, 1, [50])])
    write_messages(api.store, [m for r in range(5) for m in ride(1, r, [50 + r])])
    api.store.record_results([personal_best(3, r, 100 * r, race_id=1) for r in range(5)])
    board = api.get("/races/1/leaderboard", limit=2).body["nextCursor"]
    races = api.get("/races", limit=2).body["nextCursor"]
    classes = api.get("/classes/3/leaderboard", limit=2).body["nextCursor"]
    assert board and races and classes
    # The genuine cursors work where they were issued
    assert api.get("/races/1/leaderboard", cursor=board).status == 200
    assert api.get("/races", cursor=races).status == 200
    assert api.get("/classes/3/leaderboard", cursor=classes).status == 200
    bad: list[tuple[str, dict[str, Any]]] = [
        ("/races/1/leaderboard", {"cursor": "not-a-cursor"}),
        ("/races/1/leaderboard", {"cursor": tamper(board)}),
        ("/races/2/leaderboard", {"cursor": board}),  # another race's
        ("/races/1/leaderboard", {"cursor": races}),  # another route's
        ("/races", {"cursor": board}),
        ("/races", {"classId": 3, "cursor": races}),  # the all-races list's, on one class
        ("/classes/4/leaderboard", {"cursor": classes}),
        ("/classes/3/leaderboard", {"cursor": tamper(classes)}),
    ]
    for path, query in bad:
        answer = api.get(path, **query)
        assert answer.status == 400, (path, answer.body)
        assert set(answer.body) == {"message"}
        assert answer.body["message"]


def test_cursor_signed_with_another_secret_is_400(api: LocalApi) -> None:
    write_messages(api.store, [m for r in range(3) for m in ride(1, r, [50 + r])])
    cursor = api.get("/races/1/leaderboard", limit=1).body["nextCursor"]
    # When the API is redeployed with another secret
    api.reconfigure(CURSOR_SECRET="another-secret-0123456789abcdef")
    assert api.get("/races/1/leaderboard", limit=1, cursor=cursor).status == 400


def test_unknown_route_is_a_json_404(api: LocalApi) -> None:
    answer = api.get("/racers")
    assert answer.status == 404
    assert answer.body == {"message": "no route for GET /racers"}


def test_unknown_query_parameters_are_ignored(api: LocalApi) -> None:
    write_messages(api.store, ride(7, 1, [50]))
    assert api.get("/races/7/leaderboard", colour="red").status == 200


def test_throttling_is_503_with_retry_after(api: LocalApi, monkeypatch: pytest.MonkeyPatch) -> None:
    def throttled(self: Any, race_id: int) -> int:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")

    monkeypatch.setattr(DynamoLeaderboardQueries, "race_version", throttled)
    answer = api.get("/races/7/leaderboard")
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.body == {"message": "busy, try again shortly"}


def test_server_faults_are_a_json_500_without_details(api: LocalApi) -> None:
    api.reconfigure(TABLE_NAME="no-such-table")
    answer = api.get("/races/7/leaderboard")
    assert answer.status == 500
    assert answer.body == {"message": "internal error"}


# -- OpenAPI, CORS, configuration -----------------------------------------------------------------


def test_openapi_documents_the_four_routes(api: LocalApi) -> None:
    answer = api.get("/openapi.json")
    assert answer.status == 200
    spec = answer.body
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/races",
        "/races/{raceId}/leaderboard",
        "/races/{raceId}/racers/{racerId}",
        "/classes/{classId}/leaderboard",
    }
    schemas = spec["components"]["schemas"]
    racer_route = spec["paths"]["/races/{raceId}/racers/{racerId}"]["get"]
    ok = racer_route["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/RacerNeighbourhood"}
    assert {"racer", "neighbours", "raceId", "updatedAt"} <= set(schemas["RacerNeighbourhood"]["properties"])
    assert set(schemas["RaceStanding"]["properties"]) == {
        "rank",
        "racerId",
        "name",
        "totalOutput",
        "output",
        "second",
    }
    board = spec["paths"]["/races/{raceId}/leaderboard"]["get"]
    limit = next(p for p in board["parameters"] if p["name"] == "limit")
    assert (limit["schema"]["minimum"], limit["schema"]["maximum"], limit["schema"]["default"]) == (
        1,
        1000,
        100,
    )
    assert {"400", "404", "422"} <= set(board["responses"])


def test_cors_allows_the_configured_origin(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_api(monkeypatch, table, CORS_ALLOW_ORIGIN="https://leaderboard.example.com") as api:
        answer = api.get("/races")
        assert answer.headers["Access-Control-Allow-Origin"] == "https://leaderboard.example.com"


def test_cors_defaults_to_any_origin(api: LocalApi) -> None:
    assert api.get("/races").headers["Access-Control-Allow-Origin"] == "*"


def test_missing_settings_fail_at_first_request_naming_them(api: LocalApi) -> None:
    api.reconfigure(CURSOR_SECRET=None)
    with pytest.raises(ConfigurationError, match="CURSOR_SECRET"):
        lambda_handler(api_event("/races"), FakeLambdaContext())


def test_importing_the_handler_needs_no_environment() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TABLE_", "CURSOR_", "CORS_"))}
    subprocess.run([sys.executable, "-c", "import leaderboard.api.handler"], env=env, check=True)


def test_openapi_declares_the_stage_as_its_server(api: LocalApi) -> None:
    # The canonical event: API Gateway's own domain, stage "prod".
    spec = api.get("/openapi.json").body
    assert spec["servers"] == [{"url": "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod"}]


@pytest.mark.parametrize(
    ("stage", "domain", "url"),
    [
        (
            "Prod",
            "abc123.execute-api.eu-west-1.amazonaws.com",
            "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod",
        ),
        ("v1", "127.0.0.1:4566", "/v1"),
        ("Prod", "leaderboard.example.com", "/Prod"),
        (None, None, "/"),
    ],
)
def test_openapi_server_url(stage: str | None, domain: str | None, url: str) -> None:
    assert server_url(stage, domain) == url
