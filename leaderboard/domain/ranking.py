"""Ranking: totalOutput descending, equal scores share a rank (1, 1, 3), ties ordered by racerId."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from leaderboard.domain.scoring import RacerScore


@dataclass(frozen=True)
class Standing:
    """A racer's place in a race."""

    rank: int
    racer_id: int
    name: str
    total: int  # ten-thousandths
    output: int  # ten-thousandths, the latest second's output
    second: int  # the latest second counted
    final: bool = False


def order_key(total: int, racer_id: int) -> tuple[int, int]:
    """The sort key of the ranking contract: higher total first, then lower racerId."""
    return (-total, racer_id)


def rank_scores(scores: Iterable[RacerScore]) -> list[Standing]:
    """Order racers and assign competition ranks (equal totals share a rank; the next rank skips)."""
    ordered = sorted(scores, key=lambda s: order_key(s.total, s.racer_id))
    standings: list[Standing] = []
    rank = 0
    previous_total: int | None = None
    for position, score in enumerate(ordered, start=1):
        if score.total != previous_total:
            rank, previous_total = position, score.total
        standings.append(
            Standing(
                rank=rank,
                racer_id=score.racer_id,
                name=score.name,
                total=score.total,
                output=score.last_output,
                second=max(score.last_second, 0),
                final=score.final,
            )
        )
    return standings
