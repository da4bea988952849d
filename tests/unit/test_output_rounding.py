"""Per-second outputs are rounded exactly as the original Alleycat sample rounds them.

The original keeps ``Number(Math.round(output + 'e4') + 'e-4')``: half-up at four decimals of the
double's *printed* value. ``data/js_output_rounding.json`` holds outputs computed once by Node.js
(its ``about`` says how), among them fractional inputs whose output prints with a 5 at the fifth
decimal while rounding it in doubles gives one less, and outputs that print with 17 digits which parse
back to exactly a half once the exponent is shifted.
"""

from __future__ import annotations

import json
import random
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leaderboard.domain import (
    RaceDelta,
    WindowAccumulator,
    apply_to_bucket,
    e4_to_output,
    output_e4,
    outputs_e4,
    parse_message,
    rank_scores,
)
from leaderboard.domain.messages import MAX_EFFORT, quick_columns
from tests.support.oracle import expected_standings, js_output_e4

TABLE = json.loads((Path(__file__).parent / "data" / "js_output_rounding.json").read_text())
ROWS: list[dict[str, Any]] = TABLE["rows"]
TRICKY = ("decimal half, doubles round down", "17 digits that parse to a half")


def row_id(row: dict[str, Any]) -> str:
    return f"{row['kind']}: {row['cadence']!r}, {row['resistance']!r}"


def message(racer_id: int, second: int, cadence: float, resistance: float) -> dict[str, Any]:
    return {
        "event": "update",
        "deviceTimestamp": 1_700_000_000_000 + second,
        "second": second,
        "raceId": 9,
        "name": f"R{racer_id}",
        "racerId": racer_id,
        "classId": 1,
        "cadence": cadence,
        "resistance": resistance,
    }


def test_the_table_holds_the_cases_that_matter() -> None:
    kinds = {row["kind"] for row in ROWS}
    assert {"integers", "edges", "fractional", *TRICKY} <= kinds
    assert all(sum(row["kind"] == kind for row in ROWS) >= 10 for kind in TRICKY)


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_output_matches_javascript(row: dict[str, Any]) -> None:
    cadence, resistance = row["cadence"], row["resistance"]
    output = (cadence + 35) * (resistance + 65) / 100
    # Python prints the double with the digits JavaScript's String() does (bar a trailing ".0")
    assert repr(output).removesuffix(".0") == row["output"]
    assert output_e4(cadence, resistance) == row["roundedE4"]
    assert js_output_e4(cadence, resistance) == row["roundedE4"]
    assert e4_to_output(row["roundedE4"]) == row["value"]


def test_the_batch_path_matches_javascript() -> None:
    cadences = [row["cadence"] for row in ROWS]
    resistances = [row["resistance"] for row in ROWS]
    assert outputs_e4(cadences, resistances) == [row["roundedE4"] for row in ROWS]


def test_every_way_into_a_window_matches_javascript() -> None:
    # Given the table's inputs as one racer's seconds, sent as JSON like a device sends them
    messages = [message(1, second, row["cadence"], row["resistance"]) for second, row in enumerate(ROWS)]
    expected = {second: row["roundedE4"] for second, row in enumerate(ROWS)}
    # When folded through the aggregator's column path and message by message
    columns = quick_columns(orjson.dumps(messages))
    assert columns is not None
    window = WindowAccumulator()
    window.add_columns(columns)
    one_by_one = RaceDelta(race_id=9, class_id=1)
    for m in messages:
        one_by_one.add(parse_message(orjson.dumps(m)))
    # Then every second carries the original's value
    assert window.races[9].racers[1].outputs == expected
    assert one_by_one.racers[1].outputs == expected


@pytest.mark.parametrize("row", [r for r in ROWS if r["kind"] in TRICKY], ids=row_id)
def test_the_obvious_roundings_get_the_tricky_rows_wrong(row: dict[str, Any]) -> None:
    """Why the rounding takes the original's steps: the shortcuts disagree with it on these rows."""
    cadence, resistance = row["cadence"], row["resistance"]
    output = (cadence + 35) * (resistance + 65) / 100
    in_doubles = round((cadence + 35) * (resistance + 65) * 100)
    printed = int((Decimal(repr(output)) * 10_000).quantize(Decimal(1), ROUND_HALF_UP))  # the digits
    if row["kind"] == "decimal half, doubles round down":
        assert in_doubles == row["roundedE4"] - 1
    else:
        # the digits are below the half, but "...e4" parses to the double exactly on it
        assert printed == row["roundedE4"] - 1


# Cadence and resistance with one to three decimals land on a decimal half at the fifth decimal often.
few_decimals = st.builds(
    lambda units, places: round(units / 10**places, places),
    st.integers(0, MAX_EFFORT * 1000),
    st.sampled_from([1, 2, 3]),
).filter(lambda v: v <= MAX_EFFORT)
efforts = st.one_of(
    st.integers(0, MAX_EFFORT),
    st.floats(0, MAX_EFFORT, allow_nan=False, allow_infinity=False),
    few_decimals,
)


@given(st.lists(st.tuples(efforts, efforts), min_size=1, max_size=40))
@settings(deadline=None)  # a busy machine must not fail it on time
@example([(22.95, 32.3), (82.5, 15.35), (0, 0), (MAX_EFFORT, MAX_EFFORT), (-0.0, 0.0)])
def test_batch_single_and_oracle_agree(pairs: list[tuple[float, float]]) -> None:
    """The hot path's shortcut, the exact single path and the oracle's independent one agree."""
    cadences = [c for c, _ in pairs]
    resistances = [r for _, r in pairs]
    singles = [output_e4(c, r) for c, r in pairs]
    assert outputs_e4(cadences, resistances) == singles
    assert singles == [js_output_e4(c, r) for c, r in pairs]


def test_a_fractional_race_ranks_as_the_oracle_says() -> None:
    """Given a race like the original simulator's (mostly fractional efforts, some redeliveries), the
    domain's standings equal the oracle's, which sums the JavaScript-rounded seconds independently."""
    rng = random.Random(7)
    messages = []
    for racer_id in range(1, 41):
        for second in range(1, 61):
            cadence: float = rng.randint(2400, 7200) / 60 if rng.random() < 0.6 else rng.randint(40, 120)
            resistance: float = rng.randint(1200, 4800) / 60 if rng.random() < 0.6 else rng.randint(20, 80)
            messages.append(message(racer_id, second, cadence, resistance))
    messages += rng.sample(messages, 200)  # redeliveries never count twice
    rng.shuffle(messages)
    window = WindowAccumulator()
    for start in range(0, len(messages), 500):
        columns = quick_columns(orjson.dumps(messages[start : start + 500]))
        assert columns is not None
        window.add_columns(columns)
    scores = apply_to_bucket({}, window.races[9].racers).scores
    got = [
        {"rank": s.rank, "racerId": s.racer_id, "totalOutput": e4_to_output(s.total)}
        for s in rank_scores(scores.values())
    ]
    assert got == expected_standings(messages)[9]
