"""Use cases: fold a window into storage, and close races whose final messages never came."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from leaderboard.domain.ports import RaceStore, ShardProgress
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


def stream_position(progress: Iterable[ShardProgress], now: datetime, grace: timedelta) -> datetime:
    """How far, in the stream's time, the consumers have delivered every shard.

    A shard whose consumer lagged when it last reported (read records older than ``grace``) has
    delivered only through what it read. One that was caught up has delivered everything up to
    ``now`` if it read nothing since: the stream was quiet. The slowest shard bounds the stream;
    with no progress recorded (no consumer reports it) the stream counts as delivered up to ``now``.
    """
    position = now
    for shard in progress:
        through = datetime.fromtimestamp(shard.delivered_through / 1000, tz=UTC)
        lagging = shard.checked_at - through >= grace
        position = min(position, through if lagging else through + max(now - shard.checked_at, timedelta(0)))
    return position


def close_stale_races(store: RaceStore, now: datetime, grace: timedelta) -> list[int]:
    """Close live races idle for ``grace``: record every racer's result, then mark final.

    Idle is judged in the stream's time: the race's last device timestamp is ``grace`` behind what
    the consumers have delivered (:func:`stream_position`), so a consumer that lags never gets its
    live races closed; and no merge landed for ``grace`` either. Results are written before the race
    is marked final, so a crash in between leaves the race live and the next run repeats the
    (idempotent) work; a merge that lands after the close offers its racers again (see the store).
    """
    position = stream_position(store.consumer_progress(), now, grace)
    closed: list[int] = []
    for race in store.live_races():
        last_event = datetime.fromtimestamp(race.last_device_ts / 1000, tz=UTC)
        if now - race.updated_at < grace or position - last_event < grace:
            continue
        scores = store.load_scores(race.race_id)
        store.record_results(results_for(race, scores))
        if store.close_race(race.race_id, race.version):
            closed.append(race.race_id)
    return closed
