"""Races: what one window saw of a race, how it folds into stored buckets, and the race summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from leaderboard.domain.messages import RacerMessage
from leaderboard.domain.scoring import RacerDelta, RacerScore

# Racers are stored in buckets of this many consecutive racer ids, so a window costs at most
# ceil(racers / BUCKET_SIZE) bucket writes per race. It is part of the table's layout: changing it
# would move racers between buckets, so it is a constant, not a setting.
BUCKET_SIZE = 100

RaceStatus = Literal["live", "final"]


def bucket_of(racer_id: int) -> int:
    """The bucket that holds ``racer_id``."""
    return racer_id // BUCKET_SIZE


@dataclass(slots=True)
class RaceDelta:
    """Everything one batch or window saw of one race."""

    race_id: int
    class_id: int
    racers: dict[int, RacerDelta] = field(default_factory=dict)
    first_device_ts: int = 0
    last_device_ts: int = 0
    messages: int = 0

    def add(self, message: RacerMessage) -> None:
        """Fold one message in."""
        racer = self.racers.get(message.racer_id)
        if racer is None:
            racer = self.racers[message.racer_id] = RacerDelta(name=message.name)
        racer.add(message.second, message.output_e4, name=message.name, final=message.is_final)
        ts = message.device_timestamp
        self.first_device_ts = ts if not self.messages else min(self.first_device_ts, ts)
        self.last_device_ts = max(self.last_device_ts, ts)
        self.messages += 1

    def join(self, other: RaceDelta) -> RaceDelta:
        """The union of two deltas of the same race."""
        racers = dict(self.racers)
        for racer_id, delta in other.racers.items():
            mine = racers.get(racer_id)
            racers[racer_id] = delta if mine is None else mine.join(delta)
        firsts = [d.first_device_ts for d in (self, other) if d.messages]
        return RaceDelta(
            race_id=self.race_id,
            class_id=self.class_id,
            racers=racers,
            first_device_ts=min(firsts, default=0),
            last_device_ts=max(self.last_device_ts, other.last_device_ts),
            messages=self.messages + other.messages,
        )

    def by_bucket(self) -> dict[int, dict[int, RacerDelta]]:
        """The racers of this delta grouped by storage bucket."""
        groups: dict[int, dict[int, RacerDelta]] = {}
        for racer_id, delta in self.racers.items():
            groups.setdefault(bucket_of(racer_id), {})[racer_id] = delta
        return groups


@dataclass(frozen=True)
class BucketChange:
    """The outcome of folding deltas into one bucket."""

    scores: dict[int, RacerScore]
    changed: bool
    new_racers: int
    newly_final: int


def apply_to_bucket(scores: Mapping[int, RacerScore], deltas: Mapping[int, RacerDelta]) -> BucketChange:
    """Fold racer deltas into a bucket's stored scores (pure; idempotent)."""
    updated = dict(scores)
    changed = False
    new_racers = newly_final = 0
    for racer_id, delta in deltas.items():
        before = scores.get(racer_id)
        base = before if before is not None else RacerScore(racer_id=racer_id, name=delta.name)
        after = base.apply(delta)
        if before is None:
            new_racers += 1
        if after.final and not (before is not None and before.final):
            newly_final += 1
        if after is not before:
            updated[racer_id] = after
            changed = True
    return BucketChange(scores=updated, changed=changed, new_racers=new_racers, newly_final=newly_final)


@dataclass(frozen=True)
class BucketCount:
    """How many racers (and finished racers) a bucket held at a given bucket version."""

    racers: int
    finished: int
    version: int


def merge_bucket_counts(
    recorded: Mapping[int, BucketCount], observed: Mapping[int, BucketCount]
) -> dict[int, BucketCount]:
    """Newest count per bucket. Versions only grow, so stale observations never win."""
    merged = dict(recorded)
    for bucket, count in observed.items():
        mine = merged.get(bucket)
        if mine is None or count.version > mine.version:
            merged[bucket] = count
    return merged


@dataclass(frozen=True)
class RaceSummary:
    """A race as listed by the API and watched by the race closer.

    ``racers`` and ``finished_racers`` are the sums of ``buckets``, the per-bucket counts recorded
    at each bucket's latest version.
    """

    race_id: int
    class_id: int
    racers: int
    finished_racers: int
    updated_at: datetime
    version: int
    closed: bool = False
    first_device_ts: int = 0
    last_device_ts: int = 0
    max_second: int = 0
    buckets: Mapping[int, BucketCount] = field(default_factory=dict)

    @property
    def status(self) -> RaceStatus:
        """``final`` once every racer has finished or the closer has closed the race."""
        if self.closed or (self.racers > 0 and self.finished_racers >= self.racers):
            return "final"
        return "live"


@dataclass(frozen=True)
class FinalResult:
    """A racer's result in a finished race, offered as a class personal best."""

    class_id: int
    racer_id: int
    name: str
    race_id: int
    total: int  # ten-thousandths
    achieved_at: datetime
