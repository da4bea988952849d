"""The API's read adapter against moto: summaries, versions, race lists and personal-best pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.adapters.queries import DynamoLeaderboardQueries
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


def test_all_races_merge_live_and_final_newest_first(
    store: DynamoRaceStore, reads: DynamoLeaderboardQueries
) -> None:
    for race_id in range(1, 11):
        write_messages(store, [message(race_id, 1, 0, class_id=race_id % 2, final=race_id % 3 == 0)])
    assert [r.race_id for r in reads.races(None, None, 4)] == [10, 9, 8, 7]
    assert [r.race_id for r in reads.races(None, 7, 4)] == [6, 5, 4, 3]
    assert [r.race_id for r in reads.races(None, 3, 4)] == [2, 1]
    assert reads.races(None, 1, 4) == []
    assert [r.race_id for r in reads.races(1, None, 3)] == [9, 7, 5]
    assert [r.race_id for r in reads.races(1, 5, 10)] == [3, 1]
    assert {r.race_id for r in reads.races(None, None, 10) if r.status == "final"} == {3, 6, 9}


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
