"""Window accumulation and its Lambda state encoding."""

from __future__ import annotations

import itertools
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leaderboard.domain import (
    DEFAULT_STATE_BUDGET_BYTES,
    MalformedMessageError,
    RaceDelta,
    RacerMessage,
    StateFormatError,
    WindowAccumulator,
    parse_message,
)
from leaderboard.domain.messages import columns_of, parse_reading_array, quick_columns


def msg(racer: int, second: int, *, race: int = 42, event: str = "update", cadence: int = 60) -> RacerMessage:
    return RacerMessage.model_validate(
        {
            "event": event,
            "deviceTimestamp": 1_700_000_000_000 + second * 1000,
            "second": second,
            "raceId": race,
            "name": f"R{racer}",
            "racerId": racer,
            "classId": 3,
            "cadence": cadence,
            "resistance": 50,
        }
    )


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
    restored = WindowAccumulator.from_state(window.to_state())
    assert restored.to_state() == window.to_state()
    assert restored.races == window.races


def test_empty_and_missing_state_are_empty_windows() -> None:
    assert WindowAccumulator.from_state({}).is_empty
    assert WindowAccumulator.from_state(None).is_empty


def test_foreign_state_is_rejected() -> None:
    with pytest.raises(StateFormatError):
        WindowAccumulator.from_state({"v": 99, "races": {}})
    with pytest.raises(StateFormatError):
        WindowAccumulator.from_state({"v": 1, "races": {"1": {"c": 1}}})


def test_duplicates_within_a_window_count_once_and_final_is_kept() -> None:
    window = WindowAccumulator()
    window.add_all([msg(1, 5), msg(1, 5), msg(1, 6, event="final")])
    racer = window.races[42].racers[1]
    assert sorted(racer.outputs) == [5, 6]
    assert racer.final_second == 6
    assert window.messages == 3


def test_state_stays_compact_for_a_thousand_racers() -> None:
    window = WindowAccumulator()
    window.add_all(msg(r, s) for r in range(1000) for s in range(5))
    # 5 s of 1,000 racers must fit far below Lambda's 1 MB window-state limit.
    assert window.state_size() < 200_000


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "Invalid JSON"),
        (b'{"event": "update"}', "raceId"),
        (
            b'{"event":"update","deviceTimestamp":1,"second":"x","raceId":1,"name":"A","racerId":1,'
            b'"classId":1,"cadence":1,"resistance":1}',
            "second",
        ),
        (
            b'{"event":"boost","deviceTimestamp":1,"second":1,"raceId":1,"name":"A","racerId":1,'
            b'"classId":1,"cadence":1,"resistance":1}',
            "event",
        ),
        (
            b'{"event":"update","deviceTimestamp":1,"second":1,"raceId":1,"name":"A","racerId":1,'
            b'"classId":1,"cadence":true,"resistance":1}',
            "cadence",
        ),
        (
            b'{"event":"update","deviceTimestamp":1,"second":1,"raceId":1,"name":"  ","racerId":1,'
            b'"classId":1,"cadence":1,"resistance":1}',
            "name",
        ),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessageError, match=reason):
        parse_message(payload)


def test_extra_fields_are_ignored() -> None:
    m = parse_message(
        b'{"event":"update","deviceTimestamp":1,"second":1,"raceId":1,"name":"A","racerId":1,'
        b'"classId":1,"cadence":72,"resistance":55,"heartRate":140}'
    )
    assert m.output_centi == 12840


# -- the append-only state and the column-wise batch path -------------------------------------------

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
        window = WindowAccumulator.from_state(state)
        window.add_columns(columns_of([m.to_reading() for m in items[start:end]]))
        state = orjson.loads(orjson.dumps(window.to_state()))
    # Then the window's deltas are exactly those of adding every message in order
    assert WindowAccumulator.from_state(state).races == sequential(items)


def test_a_version_2_state_is_still_read() -> None:
    state = {
        "v": 2,
        "races": {"42": {"c": 3, "t0": 5, "t1": 9, "m": 2, "r": {"7": ["Ada", 2, [1, 100, 2, 200]]}}},
    }
    window = WindowAccumulator.from_state(state)
    window.add(msg(7, 3))
    racer = window.races[42].racers[7]
    assert (racer.outputs[1], racer.outputs[2], racer.final_second, window.messages) == (100, 200, 2, 3)


def test_state_handed_out_is_not_changed_by_later_invocations() -> None:
    first = WindowAccumulator()
    first.add_all([msg(1, 1), msg(2, 1)])
    state = first.to_state()
    frozen = orjson.dumps(state)
    later = WindowAccumulator.from_state(state)
    later.add_all([msg(1, 2).model_copy(update={"name": "New"}), msg(3, 2)])
    later.to_state()
    _ = later.races
    assert orjson.dumps(state) == frozen


def test_a_ten_thousand_racer_window_stays_under_the_state_budget() -> None:
    window = WindowAccumulator()
    for second in range(5):
        window.add_columns(columns_of([msg(r, second).to_reading() for r in range(10_000)]))
        window = WindowAccumulator.from_state(orjson.loads(orjson.dumps(window.to_state())))
    assert window.state_size() < DEFAULT_STATE_BUDGET_BYTES
    assert isinstance(window.to_state()["races"]["42"]["k"][-1][1], str)  # large chunks compress
    assert len(window.races[42].racers) == 10_000 and window.messages == 50_000


def test_corrupt_chunks_are_a_state_format_error() -> None:
    window = WindowAccumulator()
    window.add_all([msg(1, 1)])
    state = orjson.loads(orjson.dumps(window.to_state()))
    state["races"]["42"]["k"][0][1] = [[1], [1], []]  # columns of unequal length
    with pytest.raises(StateFormatError):
        _ = WindowAccumulator.from_state(state).races


VALID = {
    "event": "update",
    "deviceTimestamp": 1_700_000_000_000,
    "second": 17,
    "raceId": 5,
    "name": "Ada",
    "racerId": 101,
    "classId": 3,
    "cadence": 72,
    "resistance": 55,
}
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.integers(86_398, 86_401),
    st.integers(2**62, 2**70),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1, max_value=300),
    st.sampled_from([" Ada", "Ada ", "", "x" * 64, "x" * 65, "final", "update", "boost", "72", "\u0085A"]),
    st.lists(st.integers(), max_size=1),
)
mutations = st.dictionaries(st.sampled_from(sorted(VALID)), odd_values, max_size=3)
dropped = st.sets(st.sampled_from(sorted(VALID)), max_size=1)


@given(st.lists(st.tuples(mutations, dropped), min_size=1, max_size=5))
def test_the_column_check_accepts_only_what_the_model_accepts_unchanged(
    changes: list[tuple[dict[str, object], set[str]]],
) -> None:
    items = [{k: v for k, v in {**VALID, **mutated}.items() if k not in gone} for mutated, gone in changes]
    array = json.dumps(items).encode()  # the standard library writes integers past 64 bits too
    quick = quick_columns(array)
    try:
        model = columns_of(parse_reading_array(array))
    except MalformedMessageError:
        assert quick is None  # never more lenient than the model
        return
    if quick is not None:  # when it decides, it decides the same values (72 == 72.0)
        assert quick == model


def test_the_column_check_takes_plain_valid_batches() -> None:
    array = orjson.dumps([VALID, {**VALID, "racerId": 102, "event": "final", "extra": [1]}])
    columns = quick_columns(array)
    assert columns is not None and columns.racer_ids == (101, 102) and columns.events == ("update", "final")
