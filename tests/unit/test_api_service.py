"""The API use cases against an in-memory read side: pagination and ranking properties (no AWS)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from leaderboard.api.cursor import CursorCodec
from leaderboard.api.ranking import RankingCache
from leaderboard.api.service import LeaderboardService
from leaderboard.domain import FinalResult, RacerScore, RaceSummary, rank_scores

T0 = datetime(2026, 11, 21, 16, 0, tzinfo=UTC)


@dataclass
class MemoryReads:
    """The read port over plain dicts, ordered as the DynamoDB adapter orders them."""

    summaries: dict[int, RaceSummary] = field(default_factory=dict)
    scores: dict[int, list[RacerScore]] = field(default_factory=dict)
    bests: dict[int, list[FinalResult]] = field(default_factory=dict)
    loads: int = 0

    def race_version(self, race_id: int) -> int | None:
        race = self.summaries.get(race_id)
        return race.version if race else None

    def get_race(self, race_id: int) -> RaceSummary | None:
        return self.summaries.get(race_id)

    def load_scores(self, race_id: int) -> list[RacerScore]:
        self.loads += 1
        return list(self.scores.get(race_id, []))

    def races(
        self, class_id: int | None, before: tuple[int, int] | None, limit: int
    ) -> list[tuple[tuple[int, int], RaceSummary]]:
        keyed = sorted(
            (((r.first_device_ts, r.race_id), r) for r in self.summaries.values()),
            key=lambda pair: pair[0],
            reverse=True,
        )
        return [
            (key, r)
            for key, r in keyed
            if (class_id is None or r.class_id == class_id) and (before is None or key < before)
        ][:limit]

    def personal_bests(self, class_id: int, after: tuple[int, int] | None, limit: int) -> list[FinalResult]:
        ordered = sorted(self.bests.get(class_id, []), key=lambda b: (-b.total, b.racer_id))
        if after is not None:
            ordered = [b for b in ordered if (-b.total, b.racer_id) > (-after[0], after[1])]
        return ordered[:limit]


def _service(reads: MemoryReads) -> LeaderboardService:
    return LeaderboardService(reads, CursorCodec(b"service-test-secret-0123456789"), RankingCache(4))


def _summary(race_id: int, class_id: int = 3, version: int = 1) -> RaceSummary:
    return RaceSummary(
        race_id=race_id, class_id=class_id, racers=1, finished_racers=0, updated_at=T0, version=version
    )


totals = st.dictionaries(st.integers(0, 300), st.integers(0, 6).map(lambda t: t * 250), max_size=40)


@settings(max_examples=60, deadline=None)
@given(totals=totals, limit=st.integers(1, 6))
def test_class_board_pages_rank_like_one_big_page(totals: dict[int, int], limit: int) -> None:
    reads = MemoryReads(
        bests={
            3: [
                FinalResult(class_id=3, racer_id=r, name=f"R{r}", race_id=1, total=t, achieved_at=T0)
                for r, t in totals.items()
            ]
        }
    )
    service = _service(reads)
    rows = []
    cursor = None
    while True:
        page = service.class_leaderboard(3, limit, cursor)
        rows += page.standings
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.standings) == limit
    expected = rank_scores(RacerScore(racer_id=r, name=f"R{r}", total=t) for r, t in totals.items())
    assert [(s.rank, s.racer_id) for s in rows] == [(s.rank, s.racer_id) for s in expected]


@settings(max_examples=60, deadline=None)
@given(totals=totals, limit=st.integers(1, 6))
def test_race_pages_rank_like_one_big_page(totals: dict[int, int], limit: int) -> None:
    scores = [RacerScore(racer_id=r, name=f"R{r}", total=t) for r, t in totals.items()]
    reads = MemoryReads(summaries={7: _summary(7)}, scores={7: scores})
    service = _service(reads)
    rows = []
    cursor = None
    while True:
        page = service.race_leaderboard(7, limit, cursor)
        rows += page.standings
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [(s.rank, s.racer_id) for s in rows] == [(s.rank, s.racer_id) for s in rank_scores(scores)]
    assert reads.loads == 1  # one ranking served every page


@settings(max_examples=40, deadline=None)
@given(
    race_ids=st.sets(st.integers(1, 60), max_size=25),
    limit=st.integers(1, 7),
    class_id=st.none() | st.integers(0, 2),
)
def test_race_list_pages_cover_every_race_once_newest_first(
    race_ids: set[int], limit: int, class_id: int | None
) -> None:
    # Start times unrelated to ids, with ties (same start second: higher raceId first).
    reads = MemoryReads(
        summaries={
            r: replace(_summary(r, class_id=r % 3), first_device_ts=(r * 37) % 11 * 1000) for r in race_ids
        }
    )
    service = _service(reads)
    listed = []
    cursor = None
    while True:
        page = service.race_list(class_id, limit, cursor)
        listed += [r.race_id for r in page.races]
        cursor = page.next_cursor
        if cursor is None:
            break
    wanted = sorted(
        (r for r in race_ids if class_id is None or r % 3 == class_id),
        key=lambda r: ((r * 37) % 11, r),
        reverse=True,
    )
    assert listed == wanted
