"""The API's use cases: plain values in, response models out. No HTTP, no boto3."""

from __future__ import annotations

from typing import Protocol

from leaderboard.api.cursor import Cursors
from leaderboard.api.errors import RaceNotFoundError, RacerNotFoundError
from leaderboard.api.models import (
    ClassLeaderboard,
    ClassStanding,
    RaceLeaderboard,
    RaceList,
    RaceListing,
    RacerNeighbourhood,
    RaceStanding,
    iso,
)
from leaderboard.api.ranking import RaceRanking, RankingCache, RecentReads, SortKey
from leaderboard.domain.messages import e4_to_output
from leaderboard.domain.race import FinalResult, RaceSummary
from leaderboard.domain.ranking import Standing, order_key
from leaderboard.domain.scoring import RacerScore


class LeaderboardReads(Protocol):
    """The reads the API needs (DynamoLeaderboardQueries provides them)."""

    def race_version(self, race_id: int) -> int | None:
        """The race summary's version, or None when unknown: the cheap per-request freshness check."""
        ...

    def get_race(self, race_id: int) -> RaceSummary | None:
        """The race's summary, or None when unknown."""
        ...

    def load_scores(self, race_id: int) -> list[RacerScore]:
        """Every racer's stored score in the race."""
        ...

    def races(
        self, class_id: int | None, before: tuple[int, int] | None, limit: int
    ) -> list[tuple[tuple[int, int], RaceSummary]]:
        """Up to ``limit`` races listed after the list key ``before`` (all when None), newest start
        first, each with its list key ((start, raceId); the next page's ``before``)."""
        ...

    def personal_bests(self, class_id: int, after: tuple[int, int] | None, limit: int) -> list[FinalResult]:
        """Up to ``limit`` personal bests sorting after (best, racerId) ``after``, best first."""
        ...


def races_scope(class_id: int | None) -> str:
    """Cursor scope of the race list (a class's list and the full list page differently)."""
    return "races" if class_id is None else f"races:class:{class_id}"


def race_leaderboard_scope(race_id: int) -> str:
    """Cursor scope of one race's leaderboard."""
    return f"race:{race_id}:leaderboard"


def class_leaderboard_scope(class_id: int) -> str:
    """Cursor scope of one class's personal-best board."""
    return f"class:{class_id}:leaderboard"


def race_standing(standing: Standing) -> RaceStanding:
    """A domain standing as the API shows it (ten-thousandths become output units)."""
    return RaceStanding(
        rank=standing.rank,
        racer_id=standing.racer_id,
        name=standing.name,
        total_output=e4_to_output(standing.total),
        output=e4_to_output(standing.output),
        second=standing.second,
    )


class LeaderboardService:
    """Race lists, race leaderboards, racer neighbourhoods and class boards."""

    def __init__(
        self,
        reads: LeaderboardReads,
        cursors: Cursors,
        rankings: RankingCache,
        class_pages: RecentReads | None = None,
    ) -> None:
        """Serve from ``reads``, signing cursors with ``cursors``, keeping rankings in ``rankings``
        and class board pages in ``class_pages`` (none kept when it is None)."""
        self._reads = reads
        self._cursors = cursors
        self._rankings = rankings
        self._class_pages = class_pages or RecentReads(1, 0.0)

    def race_list(self, class_id: int | None, limit: int, cursor: str | None) -> RaceList:
        """A page of races (of one class, or all), newest start first (ties: higher raceId first)."""
        scope = races_scope(class_id)
        before = None
        if cursor is not None:
            start, race_id = self._cursors.decode(cursor, scope, 2)
            before = (start, race_id)
        # One extra row says whether another page exists without a second round trip.
        keyed = self._reads.races(class_id, before, limit + 1)
        page = [race for _, race in keyed[:limit]]
        next_cursor = self._cursors.encode(scope, keyed[limit - 1][0]) if len(keyed) > limit else None
        return RaceList(
            races=[
                RaceListing(
                    race_id=r.race_id,
                    class_id=r.class_id,
                    status=r.status,
                    racers=r.racers,
                    updated_at=iso(r.updated_at),
                )
                for r in page
            ],
            next_cursor=next_cursor,
        )

    def race_leaderboard(self, race_id: int, limit: int, cursor: str | None) -> RaceLeaderboard:
        """A page of the race's standings, after the (total, racerId) the cursor carries."""
        scope = race_leaderboard_scope(race_id)
        after = None
        if cursor is not None:
            total, racer_id = self._cursors.decode(cursor, scope, 2)
            after = order_key(total, racer_id)
        ranking = self._ranking(race_id)
        race = ranking.race
        # Popular pages (the top 100) are asked for again and again between two versions of a race:
        # the page as the API shows it is built once per ranking. The cursor is signed per request,
        # as the signing key can rotate while a ranking lives.
        page, last = ranking.view(("page", after, limit), lambda: self._page(ranking, after, limit))
        next_cursor = self._cursors.encode(scope, last) if last is not None else None
        return RaceLeaderboard.model_construct(
            race_id=race.race_id,
            class_id=race.class_id,
            status=race.status,
            updated_at=iso(race.updated_at),
            standings=page,
            next_cursor=next_cursor,
        )

    @staticmethod
    def _page(
        ranking: RaceRanking, after: SortKey | None, limit: int
    ) -> tuple[list[RaceStanding], tuple[int, int] | None]:
        """A page as the API shows it, and the (total, racerId) a next page starts after (None: last)."""
        rows, more = ranking.page(after, limit)
        return [race_standing(st) for st in rows], (rows[-1].total, rows[-1].racer_id) if more else None

    def racer_neighbourhood(self, race_id: int, racer_id: int, around: int) -> RacerNeighbourhood:
        """The racer's standing with ``around`` racers each side."""
        ranking = self._ranking(race_id)
        race = ranking.race
        found = ranking.around(racer_id, around)
        if found is None:
            raise RacerNotFoundError(race_id, racer_id)
        racer, neighbours = found
        return RacerNeighbourhood(
            race_id=race.race_id,
            class_id=race.class_id,
            status=race.status,
            updated_at=iso(race.updated_at),
            racer=race_standing(racer),
            neighbours=[race_standing(st) for st in neighbours],
        )

    def class_leaderboard(self, class_id: int, limit: int, cursor: str | None) -> ClassLeaderboard:
        """A page of the class's all-time personal bests, ranked with ties across pages.

        The cursor carries the last row's (best, racerId) and its (rank, position), so the next page
        continues the competition ranking without counting the rows before it.
        """
        scope = class_leaderboard_scope(class_id)
        after: tuple[int, int] | None = None
        rank = position = 0
        previous_best: int | None = None
        if cursor is not None:
            best, racer_id, rank, position = self._cursors.decode(cursor, scope, 4)
            after, previous_best = (best, racer_id), best
        bests = self._class_pages.get_or_read(
            (class_id, after, limit), lambda: self._reads.personal_bests(class_id, after, limit + 1)
        )
        standings: list[ClassStanding] = []
        for result in bests[:limit]:
            position += 1
            if result.total != previous_best:
                rank, previous_best = position, result.total
            standings.append(_class_standing(rank, result))
        next_cursor = None
        if len(bests) > limit:
            last = bests[limit - 1]
            next_cursor = self._cursors.encode(scope, (last.total, last.racer_id, rank, position))
        return ClassLeaderboard(class_id=class_id, standings=standings, next_cursor=next_cursor)

    def _ranking(self, race_id: int) -> RaceRanking:
        """The race's current ranking: one small read when warm, a full load and rank otherwise."""
        recent = self._rankings.recent(race_id)
        if recent is not None:
            return recent
        version = self._reads.race_version(race_id)
        if version is None:
            raise RaceNotFoundError(race_id)
        cached = self._rankings.get(race_id, version)
        if cached is not None:
            return cached
        race = self._reads.get_race(race_id)
        if race is None:
            raise RaceNotFoundError(race_id)
        # Scores are read after the summary, so they are at least as new as race.version: a ranking
        # cached under that version may be slightly ahead of it, never behind.
        ranking = RaceRanking.build(race, self._reads.load_scores(race_id))
        self._rankings.put(ranking)
        return ranking


def _class_standing(rank: int, result: FinalResult) -> ClassStanding:
    return ClassStanding(
        rank=rank,
        racer_id=result.racer_id,
        name=result.name,
        total_output=e4_to_output(result.total),
        race_id=result.race_id,
        achieved_at=iso(result.achieved_at),
    )
