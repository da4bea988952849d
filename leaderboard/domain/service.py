"""Use cases: fold a window into storage, and close races whose final messages never came."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leaderboard.domain.ports import RaceStore
from leaderboard.domain.race import FinalResult, RaceSummary
from leaderboard.domain.scoring import RacerScore
from leaderboard.domain.window import WindowAccumulator

Clock = Callable[[], datetime]


@dataclass
class WindowReport:
    """What folding one window into storage did."""

    races: int = 0
    messages: int = 0
    items_written: int = 0
    personal_bests: int = 0
    summaries: list[RaceSummary] = field(default_factory=list)


def results_for(race: RaceSummary, scores: tuple[RacerScore, ...] | list[RacerScore]) -> list[FinalResult]:
    """Turn final scores into personal-best candidates."""
    return [
        FinalResult(
            class_id=race.class_id,
            racer_id=s.racer_id,
            name=s.name,
            race_id=race.race_id,
            total=s.total,
            achieved_at=race.updated_at,
        )
        for s in scores
    ]


def apply_window(store: RaceStore, window: WindowAccumulator) -> WindowReport:
    """Merge every race of the window (the store also offers finished racers' personal bests)."""
    report = WindowReport()
    for delta in window.races.values():
        outcome = store.merge(delta)
        report.races += 1
        report.messages += delta.messages
        report.items_written += outcome.items_written
        report.summaries.append(outcome.race)
        report.personal_bests += outcome.personal_bests
    return report


def close_stale_races(store: RaceStore, now: datetime, grace: timedelta) -> list[int]:
    """Close live races with no update for ``grace``: record every racer's result, then mark final.

    Results are written before the race is marked final, so a crash in between leaves the race live
    and the next run repeats the (idempotent) work.
    """
    closed: list[int] = []
    for race in store.live_races():
        if now - race.updated_at < grace:
            continue
        scores = store.load_scores(race.race_id)
        store.record_results(results_for(race, scores))
        if store.close_race(race.race_id, race.version):
            closed.append(race.race_id)
    return closed
