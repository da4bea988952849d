"""The API's read adapter against moto: summaries, versions, race lists and personal-best pages."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.adapters.items import (
    BUCKET_FORMAT,
    decode_scores,
    encode_scores,
    legacy_race_gsi_sk,
    pb_rank_key,
)
from leaderboard.adapters.queries import DynamoLeaderboardQueries
from leaderboard.domain.race import RaceSummary
from tests.unit.test_api_support import (
    T0,
    TABLE,
    empty_table,
    message,
    moto_table,
    personal_best,
    write_messages,
)


@pytest.fixture(scope="module")
def table() -> Iterator[Any]:
    with moto_table() as client:
        yield client


@pytest.fixture
def store(table: Any) -> DynamoRaceStore:
    empty_table(table)
    return DynamoRaceStore(table, TABLE, clock=lambda: T0, pb_concurrency=1)


@pytest.fixture
def reads(table: Any) -> DynamoLeaderboardQueries:
    return DynamoLeaderboardQueries(table, TABLE)


def test_summary_and_version_match_what_the_writer_stored(
    store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    write_messages(store, [message(7, r, 0, final=r == 1) for r in range(250)])
    write_messages(store, [message(7, 0, 1)])
    stored = store.get_race(7)
    assert stored is not None
    race = reads.get_race(7)
    assert race is not None
    assert (race.race_id, race.class_id, race.racers, race.finished_racers, race.status) == (
        7,
        3,
        250,
        1,
        "live",
    )
    assert (race.version, race.updated_at) == (stored.version, stored.updated_at)
    assert reads.race_version(7) == stored.version
    assert reads.get_race(8) is None
    assert reads.race_version(8) is None


def _ids(keyed: list[tuple[tuple[int, int], RaceSummary]]) -> list[int]:
    return [race.race_id for _, race in keyed]


def _pages(reads: DynamoLeaderboardQueries, class_id: int | None, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    before = None
    while True:
        keyed = reads.races(class_id, before, limit)
        if not keyed:
            return pages
        pages.append(_ids(keyed))
        before = keyed[-1][0]


def test_all_races_merge_live_and_final_newest_start_first(
    store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    # Race ids say nothing about start times (they are hashes): race r starts at second (7 r) % 10.
    for race_id in range(1, 11):
        write_messages(
            store,
            [message(race_id, 1, (7 * race_id) % 10, class_id=race_id % 2, final=race_id % 3 == 0)],
        )
    by_start = [7, 4, 1, 8, 5, 2, 9, 6, 3, 10]
    assert _pages(reads, None, 4) == [by_start[:4], by_start[4:8], by_start[8:]]
    assert _pages(reads, 1, 3) == [[7, 1, 5], [9, 3]]
    first = reads.races(None, None, 1)[0]
    assert first[0] == (1_795_190_409_000, 7)
    assert {race.race_id for _, race in reads.races(None, None, 10) if race.status == "final"} == {3, 6, 9}


def test_races_with_the_same_start_list_by_race_id(
    store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    for race_id in (5, 3, 9, 1):
        write_messages(store, [message(race_id, 1, 0)])
    assert _pages(reads, None, 3) == [[9, 5, 3], [1]]


def test_summaries_written_before_start_keys_list_after_the_rest(
    table: Any, store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    for race_id in (4, 8, 2):
        write_messages(store, [message(race_id, 1, race_id)])
    # An item written by the previous release: the sort key held the raceId alone.
    for race_id in (30, 10, 20):
        write_messages(store, [message(race_id, 1, 0)])
        key = {"pk": {"S": f"RACE#{race_id}"}, "sk": {"S": "META"}}
        legacy = {"S": legacy_race_gsi_sk(race_id)}
        item = table.get_item(TableName=TABLE, Key=key)["Item"]
        table.put_item(TableName=TABLE, Item=item | {"gsi1sk": legacy, "gsi2sk": legacy})
    assert _pages(reads, None, 2) == [[8, 4], [2, 30], [20, 10]]
    assert _pages(reads, 3, 4) == [[8, 4, 2, 30], [20, 10]]


def test_personal_bests_page_after_a_key_best_first(
    store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    totals = {1: 500, 2: 700, 3: 700, 4: 100, 5: 700}
    store.record_results([personal_best(3, r, t, race_id=40 + r) for r, t in totals.items()])
    store.record_results([personal_best(4, 9, 10_000, race_id=50)])
    write_messages(store, [message(60, 1, 0)])  # a class-3 race summary shares the ByClass partition
    page = reads.personal_bests(3, None, 10)
    assert [(p.racer_id, p.total) for p in page] == [(2, 700), (3, 700), (5, 700), (1, 500), (4, 100)]
    assert page[0].race_id == 42
    assert page[0].achieved_at == T0
    assert [p.racer_id for p in reads.personal_bests(3, (700, 3), 2)] == [5, 1]
    assert [p.racer_id for p in reads.personal_bests(3, (500, 1), 10)] == [4]
    assert reads.personal_bests(3, (100, 4), 10) == []


# -- scores stored in hundredths before scores moved to ten-thousandths --------------------------------


def legacy_personal_best(table: Any, class_id: int, racer_id: int, hundredths: int) -> None:
    """A personal best as written before items carried a ``scale``: ``best`` in hundredths."""
    table.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": f"CLASS#{class_id}"},
            "sk": {"S": f"PB#{racer_id:012d}"},
            "best": {"N": str(hundredths)},
            "name": {"S": f"Racer {racer_id}"},
            "raceId": {"N": "1"},
            "achievedAt": {"S": "2026-11-21T16:00:00.000Z"},
            "classId": {"N": str(class_id)},
            "racerId": {"N": str(racer_id)},
            "gsi1pk": {"S": f"CLASS#{class_id}"},
            "gsi1sk": {"S": pb_rank_key(hundredths, racer_id)},
        },
    )


def test_a_legacy_bucket_is_read_in_ten_thousandths_and_rewritten(
    table: Any, store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    # Given a race whose bucket was written in format 1 (hundredths): 9696 = (61 + 35) * (36 + 65)
    write_messages(store, [message(70, 1, 0, cadence=61, resistance=36)])
    key = {"pk": {"S": "RACE#70"}, "sk": {"S": "BUCKET#000000"}}
    item = table.get_item(TableName=TABLE, Key=key)["Item"]
    legacy = decode_scores(bytes(item["racers"]["B"]))
    legacy = {
        r: replace(sc, total=sc.total // 100, last_output=sc.last_output // 100) for r, sc in legacy.items()
    }
    table.put_item(TableName=TABLE, Item=item | {"fmt": {"N": "1"}, "racers": {"B": encode_scores(legacy)}})
    # When it is read, and when a new second is folded into it
    assert [(s.total, s.last_output) for s in reads.load_scores(70)] == [(969_600, 969_600)]
    write_messages(store, [message(70, 1, 1, cadence=61.5, resistance=36)])
    # Then the old second counts in ten-thousandths next to the new one, and the bucket is format 2
    rewritten = table.get_item(TableName=TABLE, Key=key)["Item"]
    assert rewritten["fmt"] == {"N": str(BUCKET_FORMAT)}
    assert [s.total for s in reads.load_scores(70)] == [969_600 + 974_650]  # 96.5 * 101 / 100 = 97.465


def test_a_legacy_personal_best_is_compared_and_read_in_ten_thousandths(
    table: Any, store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    # Given personal bests stored in hundredths: 500.00 and 300.00
    legacy_personal_best(table, 3, 1, 50_000)
    legacy_personal_best(table, 3, 2, 30_000)
    # When racer 1 offers 499.9999 and 500.0000 (not better) and racer 2 offers 300.0001 (better)
    assert store.record_results([personal_best(3, 1, 4_999_999, race_id=9)]) == 0
    assert store.record_results([personal_best(3, 1, 5_000_000, race_id=9)]) == 0
    assert store.record_results([personal_best(3, 2, 3_000_001, race_id=9)]) == 1
    # Then the legacy best is read in ten-thousandths and the better result replaced the other
    by_racer = {p.racer_id: (p.total, p.race_id) for p in reads.personal_bests(3, None, 10)}
    assert by_racer == {1: (5_000_000, 1), 2: (3_000_001, 9)}
