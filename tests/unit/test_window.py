"""Window accumulation (the domain core) and message validation."""

from __future__ import annotations

import functools
import itertools
import json

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leaderboard.domain import (
    CorruptWindowError,
    MalformedMessageError,
    RaceDelta,
    RacerDelta,
    RacerMessage,
    RacerScore,
    WindowAccumulator,
    output_e4,
    parse_message,
)
from leaderboard.domain.messages import columns_of, parse_reading, parse_reading_array, quick_columns
from leaderboard.domain.window import ChunkColumns, PendingRace


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


def test_a_window_restored_from_its_snapshot_between_batches_equals_one_window() -> None:
    # Given a window's batches, the window handed over as a snapshot between them
    batches = [[msg(1, 1), msg(2, 1)], [msg(1, 2), msg(1, 1, cadence=70)], [msg(2, 2, event="final")]]
    handed_over = WindowAccumulator()
    for batch in batches:
        handed_over = WindowAccumulator(*handed_over.snapshot())
        handed_over.add_all(batch)
    # Then its deltas are those of one window that saw every batch
    whole = WindowAccumulator()
    whole.add_all([m for batch in batches for m in batch])
    assert handed_over.races == whole.races and handed_over.messages == whole.messages == 5


def test_a_damaged_chunk_is_a_corrupt_window() -> None:
    class Damaged:
        count = 1

        def columns(self) -> ChunkColumns:
            return ChunkColumns([1], [1], [100], [5], [])  # a final at a position that does not exist

    window = WindowAccumulator(pending={42: PendingRace(class_id=3, messages=1, chunks=[Damaged()])})
    with pytest.raises(CorruptWindowError):
        _ = window.races


def test_duplicates_within_a_window_count_once_and_final_is_kept() -> None:
    window = WindowAccumulator()
    window.add_all([msg(1, 5), msg(1, 5), msg(1, 6, event="final")])
    racer = window.races[42].racers[1]
    assert sorted(racer.outputs) == [5, 6]
    assert racer.final_second == 6
    assert window.messages == 3


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
    assert m.output_e4 == 1_284_000


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


# -- conflicting outputs for one (racer, second): the largest is kept, whatever the order --------------

CONFLICTING = (60, 90, 70)  # cadences of three messages for racer 1's second 5
LARGEST = output_e4(90, 50)


def _fold(window: WindowAccumulator, batches: list[list[RacerMessage]], how: str) -> WindowAccumulator:
    """Fold batches in: into one window, across snapshots, or with the deltas looked at in between."""
    for batch in batches:
        if how == "snapshot":
            window = WindowAccumulator(*window.snapshot())
        window.add_all(batch)
        if how == "looked at":
            _ = window.races  # replays what came so far; later batches fold into those deltas
    return window


@pytest.mark.parametrize("order", list(itertools.permutations(CONFLICTING)), ids=str)
@pytest.mark.parametrize("split", ["one batch", "one per batch"])
@pytest.mark.parametrize("how", ["plain", "snapshot", "looked at"])
def test_conflicting_outputs_for_one_second_keep_the_largest(
    order: tuple[int, ...], split: str, how: str
) -> None:
    # Given three messages for racer 1's second 5 that disagree, next to racer 2's ordinary seconds
    messages = [msg(1, 5, cadence=c) for c in order]
    batches = (
        [[*messages, msg(2, 5)]] if split == "one batch" else [[m, msg(2, i)] for i, m in enumerate(messages)]
    )
    # When the window folds them in
    window = _fold(WindowAccumulator(), batches, how)
    # Then the second counts the largest output once, and the rest of the delta is untouched
    racer = window.races[42].racers[1]
    assert racer.outputs == {5: LARGEST}
    assert racer.last_second == 5
    assert window.races[42].messages == sum(map(len, batches))


@pytest.mark.parametrize("order", list(itertools.permutations(CONFLICTING)), ids=str)
def test_message_by_message_and_joined_deltas_keep_the_largest_too(order: tuple[int, ...]) -> None:
    one_by_one = RaceDelta(race_id=42, class_id=3)
    for cadence in order:
        one_by_one.add(msg(1, 5, cadence=cadence))
    assert one_by_one.racers[1].outputs == {5: LARGEST}
    deltas = [RacerDelta("R1", {5: output_e4(c, 50)}) for c in order]
    assert functools.reduce(RacerDelta.join, deltas).outputs == {5: LARGEST}
    # and a stored score counts the second once, with the largest output when it came in one window
    assert RacerScore(racer_id=1, name="R1").apply(one_by_one.racers[1]).total == LARGEST


# -- the upper bound on `second`: the model and the batch fast path agree on both sides ----------------

CONTRACT_LAST_SECOND = 10_799  # a race lasts at most three hours (seconds 0 .. 10,799)


def _with_second(second: int) -> dict[str, object]:
    return {**VALID, "second": second}


@given(
    st.integers(CONTRACT_LAST_SECOND - 3, CONTRACT_LAST_SECOND + 3) | st.integers(0, 2 * CONTRACT_LAST_SECOND)
)
@example(CONTRACT_LAST_SECOND)
@example(CONTRACT_LAST_SECOND + 1)
@settings(deadline=None)  # a busy machine must not fail it on time
def test_second_is_accepted_up_to_the_last_second_of_the_longest_race_and_refused_above(second: int) -> None:
    payload = orjson.dumps(_with_second(second))
    batch = orjson.dumps([VALID, _with_second(second)])
    if second <= CONTRACT_LAST_SECOND:
        assert parse_message(payload).second == second
        assert parse_reading(payload)["second"] == second
        columns = quick_columns(batch)
        assert columns is not None and columns.seconds == (VALID["second"], second)
        assert columns == columns_of(parse_reading_array(batch))
    else:
        with pytest.raises(MalformedMessageError, match="second"):
            parse_message(payload)
        with pytest.raises(MalformedMessageError, match="second"):
            parse_reading(payload)
        with pytest.raises(MalformedMessageError, match="second"):
            parse_reading_array(batch)
        assert quick_columns(batch) is None
