"""The storage port the use cases need. The DynamoDB adapter implements it; tests may too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from leaderboard.domain.race import FinalResult, RaceDelta, RaceSummary
from leaderboard.domain.scoring import RacerScore


@dataclass(frozen=True)
class MergeOutcome:
    """What merging one race delta did."""

    race: RaceSummary
    items_written: int
    personal_bests: int = 0  # class personal bests this merge improved


@dataclass(frozen=True)
class ShardProgress:
    """How far a stream consumer has read one shard, in the stream's own time.

    ``delivered_through`` is the newest record's arrival time the consumer has read (epoch ms);
    ``checked_at`` is when it read it (the consumer's clock). Their difference is the consumer's lag
    (the mapping's iterator age) at that moment.
    """

    shard_id: str
    delivered_through: int
    checked_at: datetime


class RaceStore(Protocol):
    """Race standings storage with idempotent, concurrency-safe merges."""

    def merge(self, delta: RaceDelta) -> MergeOutcome:
        """Fold a race delta into storage; safe to repeat and to run concurrently with other merges.

        Racers that are final (or in a closed race) and whose score changes are offered as class
        personal bests before their new score is stored, so a crash in between cannot lose the offer.
        """
        ...

    def record_results(self, results: Sequence[FinalResult]) -> int:
        """Offer results as class personal bests (keep-best); returns how many improved a best."""
        ...

    def get_race(self, race_id: int) -> RaceSummary | None:
        """The race's summary, or None when unknown."""
        ...

    def load_scores(self, race_id: int) -> list[RacerScore]:
        """Every racer's stored score in the race."""
        ...

    def live_races(self) -> Iterable[RaceSummary]:
        """Races not yet final."""
        ...

    def close_race(self, race_id: int, expected_version: int) -> bool:
        """Mark the race final if it is still at ``expected_version``; False when it moved on."""
        ...

    def record_progress(self, progress: ShardProgress) -> None:
        """Record a consumer's progress through a shard (only ever forward)."""
        ...

    def consumer_progress(self) -> Iterable[ShardProgress]:
        """Every shard's recorded progress."""
        ...
