"""The warm ranking cache and keyset paging into a ranking (no AWS)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from leaderboard.api.ranking import RaceRanking, RankingCache, RecentReads
from leaderboard.domain import RacerScore, RaceSummary, order_key


def _race(race_id: int = 1, version: int = 1) -> RaceSummary:
    return RaceSummary(
        race_id=race_id,
        class_id=3,
        racers=0,
        finished_racers=0,
        updated_at=datetime(2026, 11, 21, tzinfo=UTC),
        version=version,
    )


def _scores(totals: dict[int, int]) -> list[RacerScore]:
    return [RacerScore(racer_id=r, name=f"R{r}", total=t) for r, t in totals.items()]


def test_ranking_follows_the_ranking_contract() -> None:
    ranking = RaceRanking.build(_race(), _scores({5: 100, 2: 300, 9: 300, 1: 50}))
    assert [(s.rank, s.racer_id) for s in ranking.standings] == [(1, 2), (1, 9), (3, 5), (4, 1)]


@given(
    totals=st.dictionaries(st.integers(0, 500), st.integers(0, 20), max_size=60),
    limit=st.integers(1, 7),
)
def test_paging_by_sort_key_visits_every_racer_once_in_order(totals: dict[int, int], limit: int) -> None:
    ranking = RaceRanking.build(_race(), _scores(totals))
    seen = []
    after = None
    while True:
        rows, more = ranking.page(after, limit)
        seen.extend(rows)
        if not more:
            break
        assert len(rows) == limit
        after = order_key(rows[-1].total, rows[-1].racer_id)
    assert seen == ranking.standings


def test_page_starts_after_the_key_not_at_an_offset() -> None:
    # Given a page that ended at racer 2 (total 300), and a new ranking where racer 7 jumped ahead,
    before = RaceRanking.build(_race(version=1), _scores({1: 400, 2: 300, 3: 200}))
    first, _ = before.page(None, 2)
    after_key = order_key(first[-1].total, first[-1].racer_id)
    moved = RaceRanking.build(_race(version=2), _scores({1: 400, 2: 300, 3: 200, 7: 999}))
    # When the next page is read from the new ranking, Then it starts right after racer 2.
    rows, more = moved.page(after_key, 2)
    assert [r.racer_id for r in rows] == [3]
    assert not more


def test_around_gives_neighbours_each_side_clipped_at_the_edges() -> None:
    ranking = RaceRanking.build(_race(), _scores({r: 1000 - r for r in range(10)}))
    found = ranking.around(5, 2)
    assert found is not None
    racer, neighbours = found
    assert racer.racer_id == 5
    assert [s.racer_id for s in neighbours] == [3, 4, 5, 6, 7]
    top = ranking.around(0, 3)
    assert top is not None
    assert [s.racer_id for s in top[1]] == [0, 1, 2, 3]
    assert ranking.around(42, 3) is None


def _ranking(race_id: int = 1, version: int = 1, totals: dict[int, int] | None = None) -> RaceRanking:
    return RaceRanking.build(_race(race_id, version), _scores(totals or {1: 10}))


def test_same_version_is_served_from_the_cache() -> None:
    cache = RankingCache(4)
    ranking = _ranking(version=3)
    cache.put(ranking)
    assert cache.get(1, 3) is ranking
    assert (cache.hits, cache.misses) == (1, 0)


def test_another_version_is_a_miss() -> None:
    cache = RankingCache(4)
    cache.put(_ranking(version=3))
    assert cache.get(1, 4) is None
    assert cache.get(2, 3) is None
    assert cache.misses == 2


def test_an_older_ranking_never_replaces_a_newer_one() -> None:
    # Two requests racing: the one that loaded the newer version must win whatever the order.
    cache = RankingCache(4)
    newer = _ranking(version=5)
    cache.put(newer)
    cache.put(_ranking(version=4))
    assert cache.get(1, 5) is newer
    cache.put(_ranking(version=6))
    assert cache.get(1, 5) is None


def test_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache = RankingCache(2)
    cache.put(_ranking(1))
    cache.put(_ranking(2))
    assert cache.get(1, 1) is not None  # race 1 is now the most recently used
    cache.put(_ranking(3))  # evicts race 2
    assert len(cache) == 2
    assert cache.get(2, 1) is None
    assert cache.get(1, 1) is not None
    assert cache.get(3, 1) is not None


def test_recent_ranking_is_served_only_within_the_revalidation_window() -> None:
    now = [100.0]
    cache = RankingCache(4, revalidate_after_s=1.0, clock=lambda: now[0])
    race = RaceSummary(
        race_id=1, class_id=1, racers=1, finished_racers=0, updated_at=datetime.now(UTC), version=3
    )
    assert cache.recent(1) is None  # nothing cached yet
    ranking = RaceRanking.build(race, [RacerScore(racer_id=1, name="Ada", total=10)])
    cache.put(ranking)
    now[0] += 0.5
    assert cache.recent(1) is ranking  # confirmed half a second ago
    now[0] += 0.6
    assert cache.recent(1) is None  # stale: the caller must read the version again
    assert cache.get(1, 3) is ranking  # the version read confirms it ...
    assert cache.recent(1) is ranking  # ... for another window
    assert RankingCache(4).recent(1) is None  # window 0: always revalidate


def test_recent_reads_serve_an_answer_only_while_it_is_fresh() -> None:
    now = [100.0]
    reads: list[str] = []
    cache = RecentReads(2, fresh_for_s=1.0, clock=lambda: now[0])

    def read(value: str) -> Callable[[], str]:
        def run() -> str:
            reads.append(value)
            return value

        return run

    assert cache.get_or_read("a", read("a1")) == "a1"
    now[0] += 0.5
    assert cache.get_or_read("a", read("a2")) == "a1"  # fresh: no read
    now[0] += 0.5
    assert cache.get_or_read("a", read("a3")) == "a3"  # a second old: read again
    assert reads == ["a1", "a3"]


def test_recent_reads_are_bounded_and_off_at_zero() -> None:
    cache = RecentReads(2, fresh_for_s=10.0, clock=lambda: 0.0)
    for key in ("a", "b", "c"):
        cache.get_or_read(key, lambda k=key: k)  # type: ignore[misc]
    assert cache.get_or_read("a", lambda: "again") == "again"  # "a" was evicted
    off = RecentReads(1, fresh_for_s=0.0)
    assert off.get_or_read("k", lambda: 1) == 1
    assert off.get_or_read("k", lambda: 2) == 2
