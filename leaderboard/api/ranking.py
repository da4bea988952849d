"""Ranked races kept warm between invocations, and keyset paging into them.

Ranking a race means reading every bucket and sorting every racer, so a warm function keeps the last
few rankings. A ranking is valid for exactly one summary ``version`` (every write to a race bumps it),
so reading the version alone tells whether the cached ranking is still the race's ranking. The
summary the ranking was built with travels with it: its fields change only with the version too.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from leaderboard.domain.race import RaceSummary
from leaderboard.domain.ranking import Standing, order_key, rank_scores
from leaderboard.domain.scoring import RacerScore

SortKey = tuple[int, int]
T = TypeVar("T")
# Views (e.g. a page as the API shows it) kept per ranking; a page of 100 rows is a few tens of KB.
MAX_VIEWS = 64


@dataclass(frozen=True)
class RaceRanking:
    """Every racer of one version of a race, ranked per the ranking contract."""

    race: RaceSummary
    standings: list[Standing]
    keys: list[SortKey]  # order_key of each standing, ascending: what pages bisect into
    positions: dict[int, int]  # racer id -> index in standings
    # Answers derived from this ranking alone (see :meth:`view`); they go when the ranking goes.
    _views: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def build(cls, race: RaceSummary, scores: Iterable[RacerScore]) -> RaceRanking:
        """Rank ``scores`` as they stand at ``race.version``."""
        standings = rank_scores(scores)
        return cls(
            race=race,
            standings=standings,
            keys=[order_key(st.total, st.racer_id) for st in standings],
            positions={st.racer_id: i for i, st in enumerate(standings)},
        )

    def page(self, after: SortKey | None, limit: int) -> tuple[list[Standing], bool]:
        """Up to ``limit`` standings sorting strictly after ``after``, and whether more follow.

        ``after`` is a sort key, not a position: the page starts after that (total, racer) even if
        that racer has since moved or scores above it changed.
        """
        start = 0 if after is None else bisect_right(self.keys, after)
        end = start + limit
        return self.standings[start:end], end < len(self.standings)

    def view(self, key: Hashable, build: Callable[[], T]) -> T:
        """``build()``, kept under ``key`` for as long as this ranking is the race's.

        A ranking never changes, so what is computed from it alone (a page converted to the API's
        models) can be reused by every request that asks for the same thing: a new version of the
        race brings a new ranking, and with it new views. Bounded; the oldest views go first.
        """
        try:
            found: T = self._views[key]
        except KeyError:
            found = build()
            if len(self._views) >= MAX_VIEWS:
                # Concurrent callers may race here; losing a view only costs a rebuild.
                self._views.pop(next(iter(self._views)), None)
            self._views[key] = found
        return found

    def around(self, racer_id: int, neighbours: int) -> tuple[Standing, list[Standing]] | None:
        """The racer's standing and up to ``neighbours`` standings each side (racer included)."""
        index = self.positions.get(racer_id)
        if index is None:
            return None
        low = max(0, index - neighbours)
        return self.standings[index], self.standings[low : index + neighbours + 1]


class RankingCache:
    """A bounded LRU of rankings, one per race, each valid for one race version."""

    def __init__(
        self, max_races: int, revalidate_after_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Keep at most ``max_races`` rankings.

        A ranking whose version was confirmed less than ``revalidate_after_s`` ago is served without
        reading the race's version again (:meth:`recent`): standings change once per window, so a
        second of staleness costs nothing and saves a read per request under load.
        """
        if max_races < 1:
            raise ValueError("max_races must be at least 1")
        self._max = max_races
        self._revalidate_after_s = revalidate_after_s
        self._clock = clock
        self._confirmed: dict[int, float] = {}
        self._rankings: OrderedDict[int, RaceRanking] = OrderedDict()
        # Cheap insurance for runtimes that call one handler from several threads.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def recent(self, race_id: int) -> RaceRanking | None:
        """The cached ranking if its version was confirmed within the revalidation window."""
        with self._lock:
            cached = self._rankings.get(race_id)
            confirmed = self._confirmed.get(race_id)
            if cached is None or confirmed is None or self._clock() - confirmed >= self._revalidate_after_s:
                return None
            self._rankings.move_to_end(race_id)
            self.hits += 1
            return cached

    def get(self, race_id: int, version: int) -> RaceRanking | None:
        """The cached ranking of ``race_id`` if it is at ``version``; None (a miss) otherwise."""
        with self._lock:
            cached = self._rankings.get(race_id)
            if cached is None or cached.race.version != version:
                self.misses += 1
                return None
            self._rankings.move_to_end(race_id)
            self._confirmed[race_id] = self._clock()
            self.hits += 1
            return cached

    def put(self, ranking: RaceRanking) -> None:
        """Keep ``ranking`` unless a newer version of the race is already held."""
        race_id = ranking.race.race_id
        with self._lock:
            current = self._rankings.get(race_id)
            if current is not None and current.race.version > ranking.race.version:
                return
            self._rankings[race_id] = ranking
            self._confirmed[race_id] = self._clock()
            self._rankings.move_to_end(race_id)
            while len(self._rankings) > self._max:
                evicted, _ = self._rankings.popitem(last=False)
                self._confirmed.pop(evicted, None)

    def __len__(self) -> int:
        """Rankings held."""
        return len(self._rankings)


class RecentReads:
    """Answers of versionless reads (a class's personal-best pages) kept for a short while.

    A class board has no version to revalidate by, and its query is the API's most expensive read
    (locally, moto walks the whole index for it). Personal bests change only when a race finishes,
    so serving a page read less than ``fresh_for_s`` ago costs at most that much staleness, the same
    bound :class:`RankingCache` gives live races.
    """

    def __init__(
        self, max_entries: int, fresh_for_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Keep at most ``max_entries`` answers, each for ``fresh_for_s`` seconds (0: never)."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max = max_entries
        self._fresh_for_s = fresh_for_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_read(self, key: Hashable, read: Callable[[], T]) -> T:
        """The answer kept under ``key`` while fresh; otherwise ``read()``, kept for next time."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self._fresh_for_s:
                self._entries.move_to_end(key)
                answer: T = entry[1]
                return answer
        answer = read()  # outside the lock: a slow read must not hold up other keys
        if self._fresh_for_s > 0:
            with self._lock:
                self._entries[key] = (now, answer)
                self._entries.move_to_end(key)
                while len(self._entries) > self._max:
                    self._entries.popitem(last=False)
        return answer
