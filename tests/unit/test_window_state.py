"""The Lambda window state: the aggregator's codec for the window accumulator."""

from __future__ import annotations

import base64
import itertools
import zlib
from array import array

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.aggregator.window_state import (
    StateFormatError,
    from_state,
    state_size,
    to_state,
)
from consumers.settings import DEFAULT_STATE_BUDGET_BYTES
from leaderboard.domain import RaceDelta, RacerMessage, WindowAccumulator
from leaderboard.domain.messages import columns_of
from tests.unit.test_window import msg

messages = st.builds(
    msg,
    racer=st.integers(0, 250),
    second=st.integers(0, 300),
    race=st.sampled_from([1, 2]),
    event=st.sampled_from(["update", "final"]),
)


@given(st.lists(messages, max_size=60))
def test_state_round_trip_is_lossless(items: list[RacerMessage]) -> None:
    window = WindowAccumulator()
    window.add_all(items)
    restored = from_state(to_state(window))
    assert to_state(restored) == to_state(window)
    assert restored.races == window.races


def test_empty_and_missing_state_are_empty_windows() -> None:
    assert from_state({}).is_empty
    assert from_state(None).is_empty


def test_foreign_state_is_rejected() -> None:
    with pytest.raises(StateFormatError):
        from_state({"v": 99, "races": {}})
    with pytest.raises(StateFormatError):
        from_state({"v": 1, "races": {"1": {"c": 1}}})


def test_state_stays_compact_for_a_thousand_racers() -> None:
    window = WindowAccumulator()
    window.add_all(msg(r, s) for r in range(1000) for s in range(5))
    # 5 s of 1,000 racers must fit far below Lambda's 1 MB window-state limit.
    assert state_size(to_state(window)) < 200_000


# -- the append-only state ---------------------------------------------------------------------------

renamed_messages = st.builds(
    lambda racer, second, race, event, cadence, name: msg(
        racer, second, race=race, event=event, cadence=cadence
    ).model_copy(update={"name": name}),
    racer=st.integers(0, 20),
    second=st.integers(0, 40),
    race=st.sampled_from([1, 2]),
    event=st.sampled_from(["update", "update", "final"]),
    cadence=st.integers(40, 45),
    name=st.sampled_from(["Ada", "Bo", "Cy"]),
)


def sequential(items: list[RacerMessage]) -> dict[int, RaceDelta]:
    """The reference: every message added one by one (RaceDelta.add), no state in between."""
    races: dict[int, RaceDelta] = {}
    for m in items:
        races.setdefault(m.race_id, RaceDelta(race_id=m.race_id, class_id=m.class_id)).add(m)
    return races


@given(st.lists(renamed_messages, max_size=80), st.lists(st.integers(0, 80), max_size=6))
def test_invocations_with_state_in_between_equal_adding_each_message(
    items: list[RacerMessage], cuts: list[int]
) -> None:
    # Given the messages split into invocations (duplicates, renames, finals, two races)
    bounds = [0, *sorted(c for c in cuts if c <= len(items)), len(items)]
    state: dict[str, object] = {}
    # When each invocation folds its batch into the state it got, the state crossing JSON each time
    for start, end in itertools.pairwise(bounds):
        window = from_state(state)
        window.add_columns(columns_of([m.to_reading() for m in items[start:end]]))
        state = orjson.loads(orjson.dumps(to_state(window)))
    # Then the window's deltas are exactly those of adding every message in order
    assert from_state(state).races == sequential(items)


def test_a_version_2_state_is_still_read_its_hundredths_as_ten_thousandths() -> None:
    state = {
        "v": 2,
        "races": {"42": {"c": 3, "t0": 5, "t1": 9, "m": 2, "r": {"7": ["Ada", 2, [1, 100, 2, 200]]}}},
    }
    window = from_state(state)
    window.add(msg(7, 3))
    racer = window.races[42].racers[7]
    assert (racer.outputs[1], racer.outputs[2], racer.final_second, window.messages) == (10000, 20000, 2, 3)


@pytest.mark.parametrize("compressed", [False, True])
def test_a_version_3_window_open_across_the_deploy_counts_in_ten_thousandths(compressed: bool) -> None:
    # Given a version 3 state (outputs in hundredths) holding one chunk of two messages of racer 7
    racer_ids, seconds, outputs = [7, 7], [1, 2], [100, 250]
    rows: object = [racer_ids, seconds, outputs]
    if compressed:
        packed = (
            array("q", racer_ids).tobytes() + array("i", seconds).tobytes() + array("i", outputs).tobytes()
        )
        rows = base64.b64encode(zlib.compress(packed)).decode()
    chunk = [2, rows, [1], [[0, "Ada"]]]
    state = {"v": 3, "races": {"42": {"c": 3, "t0": 5, "t1": 9, "m": 2, "n": [[7], ["Ada"]], "k": [chunk]}}}

    # When the window is read, handed on as this version's state and read again
    window = from_state(state)
    handed_on = orjson.loads(orjson.dumps(to_state(window)))
    again = from_state(handed_on)

    # Then its outputs are ten-thousandths, scaled once, and the state handed on is the new version
    assert handed_on["v"] == 4
    for read in (window, again):
        racer = read.races[42].racers[7]
        assert (racer.outputs, racer.final_second) == ({1: 10000, 2: 25000}, 2)


def test_state_handed_out_is_not_changed_by_later_invocations() -> None:
    first = WindowAccumulator()
    first.add_all([msg(1, 1), msg(2, 1)])
    state = to_state(first)
    frozen = orjson.dumps(state)
    later = from_state(state)
    later.add_all([msg(1, 2).model_copy(update={"name": "New"}), msg(3, 2)])
    to_state(later)
    _ = later.races
    assert orjson.dumps(state) == frozen


def test_a_ten_thousand_racer_window_stays_under_the_state_budget() -> None:
    window = WindowAccumulator()
    for second in range(5):
        window.add_columns(columns_of([msg(r, second).to_reading() for r in range(10_000)]))
        window = from_state(orjson.loads(orjson.dumps(to_state(window))))
    assert state_size(to_state(window)) < DEFAULT_STATE_BUDGET_BYTES
    assert isinstance(to_state(window)["races"]["42"]["k"][-1][1], str)  # large chunks compress
    assert len(window.races[42].racers) == 10_000 and window.messages == 50_000


def test_corrupt_chunks_are_a_state_format_error() -> None:
    window = WindowAccumulator()
    window.add_all([msg(1, 1)])
    state = orjson.loads(orjson.dumps(to_state(window)))
    state["races"]["42"]["k"][0][1] = [[1], [1], []]  # columns of unequal length
    with pytest.raises(StateFormatError):
        _ = from_state(state).races
