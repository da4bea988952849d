"""Ranking contract: totalOutput descending, shared ranks (1, 1, 3), ties by racerId ascending."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from leaderboard.domain import RacerScore, rank_scores


def score(racer_id: int, total: int) -> RacerScore:
    return RacerScore(racer_id=racer_id, name=f"r{racer_id}", total=total, last_second=3, last_output=10)


def test_ties_share_a_rank_and_the_next_rank_skips() -> None:
    ranked = rank_scores([score(5, 100), score(2, 300), score(9, 300), score(1, 50)])
    assert [(s.rank, s.racer_id) for s in ranked] == [(1, 2), (1, 9), (3, 5), (4, 1)]


def test_empty_race_has_no_standings() -> None:
    assert rank_scores([]) == []


@given(st.lists(st.integers(0, 20), min_size=1, max_size=40))
def test_ranks_are_competition_ranks(totals: list[int]) -> None:
    ranked = rank_scores([score(i, t) for i, t in enumerate(totals)])
    for s in ranked:
        assert s.rank == 1 + sum(1 for t in totals if t > s.total)
    keys = [(-s.total, s.racer_id) for s in ranked]
    assert keys == sorted(keys)
