"""Window accumulation and its Lambda state encoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leaderboard.domain import (
    MalformedMessageError,
    RacerMessage,
    StateFormatError,
    WindowAccumulator,
    parse_message,
)


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
