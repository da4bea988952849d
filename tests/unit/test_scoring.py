"""Scoring: merging is commutative, associative and idempotent; duplicates never count twice."""

from __future__ import annotations

from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from leaderboard.domain import RacerDelta, RacerScore, output_e4

# A given (racer, second) always carries the same output, as re-deliveries of one message do.
seconds = st.integers(min_value=0, max_value=400)


def output_of(second: int) -> int:
    return output_e4(30 + second % 61, 33 + (second * 7) % 54)


@st.composite
def deltas(draw: st.DrawFn) -> RacerDelta:
    secs = draw(st.lists(seconds, max_size=30))
    final = draw(st.one_of(st.none(), seconds))
    return RacerDelta(name="Ada", outputs={s: output_of(s) for s in secs}, final_second=final)


def apply_all(score: RacerScore, items: list[RacerDelta]) -> RacerScore:
    return reduce(lambda acc, d: acc.apply(d), items, score)


def fresh() -> RacerScore:
    return RacerScore(racer_id=7, name="Ada")


def test_output_formula_matches_the_contract() -> None:
    # (72 + 35) * (55 + 65) / 100 = 128.4 -> 1284000 ten-thousandths
    assert output_e4(72, 55) == 1_284_000


@given(deltas(), deltas())
def test_join_is_commutative(a: RacerDelta, b: RacerDelta) -> None:
    assert a.join(b) == b.join(a)


@given(deltas(), deltas(), deltas())
def test_join_is_associative(a: RacerDelta, b: RacerDelta, c: RacerDelta) -> None:
    assert a.join(b).join(c) == a.join(b.join(c))


@given(deltas())
def test_join_is_idempotent(a: RacerDelta) -> None:
    assert a.join(a) == a


@given(st.lists(deltas(), max_size=6), st.randoms())
def test_apply_is_order_insensitive(items: list[RacerDelta], rnd: object) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert apply_all(fresh(), items) == apply_all(fresh(), shuffled)


@given(st.lists(deltas(), max_size=6))
def test_apply_is_idempotent_under_replays(items: list[RacerDelta]) -> None:
    once = apply_all(fresh(), items)
    replayed = apply_all(once, items + items[:2])
    assert replayed == once


@given(deltas(), deltas())
def test_applying_a_join_equals_applying_each(a: RacerDelta, b: RacerDelta) -> None:
    assert fresh().apply(a.join(b)) == fresh().apply(a).apply(b)


@given(st.lists(deltas(), max_size=6))
def test_total_counts_each_distinct_second_once(items: list[RacerDelta]) -> None:
    score = apply_all(fresh(), items)
    distinct = {s for d in items for s in d.outputs}
    assert score.total == sum(output_of(s) for s in distinct)
    assert score.seconds_counted == len(distinct)
    assert score.final == any(d.final_second is not None for d in items)


def test_late_second_still_counts() -> None:
    score = fresh().apply(RacerDelta("Ada", {10: 100, 11: 100}))
    late = score.apply(RacerDelta("Ada", {3: 50}))
    assert late.total == 250
    assert late.last_second == 11  # a late second does not move the racer's clock back


def test_unchanged_apply_returns_the_same_object() -> None:
    score = fresh().apply(RacerDelta("Ada", {1: 5}))
    assert score.apply(RacerDelta("Ada", {1: 5})) is score
