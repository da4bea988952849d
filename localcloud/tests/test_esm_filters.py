"""The event filter matcher (EventBridge pattern syntax) and Kinesis FilterCriteria end to end."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from esm_support import (
    Aws,
    EngineFactory,
    RecordingInvoker,
    aws,
    data_of,
    invoker,
    make_engine,
    moto_endpoint,
)
from hypothesis import given
from hypothesis import strategies as st
from localcloud.esm import EventPattern, PatternError, RecordFilter

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]


def match(pattern: dict[str, Any], event: Any) -> bool:
    return EventPattern(json.dumps(pattern)).matches(event)


@pytest.mark.parametrize(
    ("pattern", "event", "expected"),
    [
        # equals: strings, numbers, booleans, null
        ({"a": ["x"]}, {"a": "x"}, True),
        ({"a": ["x"]}, {"a": "y"}, False),
        ({"a": ["x", "y"]}, {"a": "y"}, True),
        ({"a": [5]}, {"a": 5.0}, True),
        ({"a": [5]}, {"a": "5"}, False),
        ({"a": ["5"]}, {"a": 5}, False),
        ({"a": [True]}, {"a": True}, True),
        ({"a": [True]}, {"a": 1}, False),
        ({"a": [None]}, {"a": None}, True),
        ({"a": [None]}, {}, False),
        ({"a": ["x"]}, {}, False),
        # arrays in the event: any element
        ({"a": ["x"]}, {"a": ["y", "x"]}, True),
        ({"a": ["x"]}, {"a": ["y"]}, False),
        # nesting
        ({"a": {"b": ["x"]}}, {"a": {"b": "x"}}, True),
        ({"a": {"b": ["x"]}}, {"a": {"b": "y"}}, False),
        ({"a": {"b": ["x"]}}, {"a": "x"}, False),
        ({"a": {"b": ["x"]}}, {"a": [{"b": "z"}, {"b": "x"}]}, True),
        # several fields are ANDed
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "y"}, True),
        ({"a": ["x"], "b": ["y"]}, {"a": "x", "b": "z"}, False),
        # prefix / suffix, and their case-insensitive forms
        ({"a": [{"prefix": "ab"}]}, {"a": "abc"}, True),
        ({"a": [{"prefix": "ab"}]}, {"a": "cab"}, False),
        ({"a": [{"prefix": "ab"}]}, {"a": 12}, False),
        ({"a": [{"suffix": ".png"}]}, {"a": "x.png"}, True),
        ({"a": [{"suffix": ".png"}]}, {"a": "x.PNG"}, False),
        ({"a": [{"prefix": {"equals-ignore-case": "AB"}}]}, {"a": "abc"}, True),
        ({"a": [{"suffix": {"equals-ignore-case": ".PNG"}}]}, {"a": "x.png"}, True),
        # equals-ignore-case
        ({"a": [{"equals-ignore-case": "ALICE"}]}, {"a": "alice"}, True),
        ({"a": [{"equals-ignore-case": "ALICE"}]}, {"a": "alicia"}, False),
        # anything-but
        ({"a": [{"anything-but": "x"}]}, {"a": "y"}, True),
        ({"a": [{"anything-but": "x"}]}, {"a": "x"}, False),
        ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "y"}, False),
        ({"a": [{"anything-but": ["x", "y"]}]}, {"a": "z"}, True),
        ({"a": [{"anything-but": [1, 2]}]}, {"a": 3}, True),
        ({"a": [{"anything-but": [1, 2]}]}, {"a": 2}, False),
        ({"a": [{"anything-but": "x"}]}, {}, False),
        ({"a": [{"anything-but": {"prefix": "in"}}]}, {"a": "internal"}, False),
        ({"a": [{"anything-but": {"prefix": "in"}}]}, {"a": "external"}, True),
        ({"a": [{"anything-but": {"suffix": ".tmp"}}]}, {"a": "x.tmp"}, False),
        ({"a": [{"anything-but": {"equals-ignore-case": ["X", "Y"]}}]}, {"a": "x"}, False),
        ({"a": [{"anything-but": {"equals-ignore-case": ["X", "Y"]}}]}, {"a": "z"}, True),
        # numeric
        ({"a": [{"numeric": [">", 10]}]}, {"a": 11}, True),
        ({"a": [{"numeric": [">", 10]}]}, {"a": 10}, False),
        ({"a": [{"numeric": [">=", 10]}]}, {"a": 10}, True),
        ({"a": [{"numeric": ["<", 0]}]}, {"a": -0.5}, True),
        ({"a": [{"numeric": ["<=", 0]}]}, {"a": 0.1}, False),
        ({"a": [{"numeric": ["=", 3.5]}]}, {"a": 3.5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 5}, True),
        ({"a": [{"numeric": [">", 0, "<=", 5]}]}, {"a": 6}, False),
        ({"a": [{"numeric": [">", 0]}]}, {"a": "7"}, False),
        ({"a": [{"numeric": [">", 0]}]}, {"a": True}, False),
        # exists
        ({"a": [{"exists": True}]}, {"a": "x"}, True),
        ({"a": [{"exists": True}]}, {"a": None}, True),
        ({"a": [{"exists": True}]}, {}, False),
        ({"a": [{"exists": False}]}, {}, True),
        ({"a": [{"exists": False}]}, {"a": 1}, False),
        ({"a": {"b": [{"exists": False}]}}, {}, True),
        ({"a": {"b": [{"exists": False}]}}, {"a": {"b": 1}}, False),
        # $or
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"b": "y"}, True),
        ({"$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "y", "b": "x"}, False),
        ({"c": ["z"], "$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "x", "c": "z"}, True),
        ({"c": ["z"], "$or": [{"a": ["x"]}, {"b": ["y"]}]}, {"a": "x", "c": "q"}, False),
        # cidr and wildcard
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.0.7"}, True),
        ({"ip": [{"cidr": "10.0.0.0/24"}]}, {"ip": "10.0.1.7"}, False),
        ({"a": [{"wildcard": "race-*-final"}]}, {"a": "race-17-final"}, True),
        ({"a": [{"wildcard": "race-*-final"}]}, {"a": "race-17-live"}, False),
        # a pattern over a non-object event only sees empty objects
        ({"a": ["x"]}, 5, False),
    ],
)
def test_pattern_matching(pattern: dict[str, Any], event: Any, expected: bool) -> None:
    assert match(pattern, event) is expected


@pytest.mark.parametrize(
    "pattern",
    [
        "not json",
        "[1, 2]",
        json.dumps({"a": "x"}),
        json.dumps({"a": []}),
        json.dumps({"a": [{"numeric": [">"]}]}),
        json.dumps({"a": [{"numeric": ["~", 1]}]}),
        json.dumps({"a": [{"bogus": 1}]}),
        json.dumps({"a": [{"exists": "yes"}]}),
        json.dumps({"a": [{"prefix": 1}]}),
        json.dumps({"$or": [{"a": ["x"]}]}),
        json.dumps({"a": [{"cidr": "nope"}]}),
    ],
)
def test_invalid_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(PatternError):
        EventPattern(pattern)


def test_at_most_five_filters() -> None:
    with pytest.raises(PatternError):
        RecordFilter([json.dumps({"a": [str(i)]}) for i in range(6)])


def test_filters_are_ored_and_empty_filters_match_everything() -> None:
    either = RecordFilter([json.dumps({"a": ["x"]}), json.dumps({"b": ["y"]})])
    assert either.matches({"a": "x"}) and either.matches({"b": "y"}) and not either.matches({"a": "y"})
    assert RecordFilter([]).matches({"anything": 1})


def _b64(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.b64encode(raw).decode()


def test_kinesis_filters_see_only_decoded_data() -> None:
    on_data = RecordFilter([json.dumps({"data": {"kind": ["update"]}})])
    assert on_data.matches_kinesis(_b64({"kind": "update"}))
    assert not on_data.matches_kinesis(_b64({"kind": "final"}))
    # Non-JSON data never matches a data pattern, not even "exists: false"
    assert not on_data.matches_kinesis(_b64(b"\x00not json"))
    absent = RecordFilter([json.dumps({"data": {"kind": [{"exists": False}]}})])
    assert not absent.matches_kinesis(_b64(b"plain text"))
    assert absent.matches_kinesis(_b64({"other": 1}))
    # Metadata is not visible to Kinesis filters
    on_key = RecordFilter([json.dumps({"partitionKey": ["k"]})])
    assert not on_key.matches_kinesis(_b64({"partitionKey": "k"}))


scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000), st.text(max_size=8))


@given(value=scalars)
def test_a_value_matches_itself_and_anything_but_is_its_complement(value: Any) -> None:
    assert match({"a": [value]}, {"a": value})
    if value is not None and not isinstance(value, bool):
        assert match({"a": [{"anything-but": [value]}]}, {"a": value}) is False


@given(value=st.integers(-10_000, 10_000), bound=st.integers(-10_000, 10_000))
def test_numeric_agrees_with_python(value: int, bound: int) -> None:
    assert match({"a": [{"numeric": ["<", bound]}]}, {"a": value}) is (value < bound)
    assert match({"a": [{"numeric": [">=", bound]}]}, {"a": value}) is (value >= bound)


@given(text=st.text(max_size=12), cut=st.integers(0, 12))
def test_prefix_and_suffix_agree_with_python(text: str, cut: int) -> None:
    assert match({"a": [{"prefix": text[:cut]}]}, {"a": text})
    assert match({"a": [{"suffix": text[cut:]}]}, {"a": text})


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_kinesis_filter_criteria_deliver_matches_and_consume_the_rest(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a mapping that only wants "update" events with cadence > 50 or racer 7
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    patterns = [
        {"data": {"event": ["update"], "cadence": [{"numeric": [">", 50]}]}},
        {"data": {"racerId": [7]}},
    ]
    aws.mapping(name, stream_arn, FilterCriteria={"Filters": [{"Pattern": json.dumps(p)} for p in patterns]})
    bodies: list[Any] = [
        {"event": "update", "cadence": 60, "racerId": 1},
        {"event": "update", "cadence": 40, "racerId": 2},
        {"event": "final", "cadence": 90, "racerId": 3},
        {"event": "final", "cadence": 10, "racerId": 7},
        b"not json at all",
    ]
    for body in bodies:
        aws.put(stream, body)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    # Then only matching records are delivered, once; the rest are consumed (checkpoint past them)
    assert [data_of(r)["racerId"] for r in invoker.delivered(name)] == [1, 7]
    assert len(invoker.calls_for(name)) == 1
    [stats] = engine.stats()
    assert stats.filtered == 3
    assert stats.retries == 0
    assert stats.checkpoint == "5"
