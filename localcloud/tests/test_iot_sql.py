"""IoT SQL, substitution templates and topic filters (no servers)."""

from __future__ import annotations

import json
import re

import pytest
from localcloud.iot import (
    UNDEFINED,
    EvalContext,
    IotMessage,
    SqlError,
    SubstitutionTemplate,
    parse_expression,
    parse_sql,
    topic_matches,
)
from localcloud.iot.topics import InvalidTopicError, validate_filter, validate_topic

POSITION = {"raceId": "r-42", "riderId": 7, "speed": 12.5, "pos": {"lat": 1.5, "lon": 2.5}, "laps": [3, 4]}


def message(payload: object = POSITION, topic: str = "races/r-42/positions", client_id: str = "bike-7"):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return IotMessage(topic=topic, payload=body, timestamp_ms=1_700_000_000_123, client_id=client_id)


def evaluate(expression: str, msg: IotMessage | None = None):
    return parse_expression(expression).evaluate(EvalContext(msg or message()))


@pytest.mark.parametrize(
    ("topic_filter", "topic", "expected"),
    [
        ("races/+/positions", "races/r1/positions", True),
        ("races/+/positions", "races/r1/laps", False),
        ("races/+/positions", "races/r1/positions/extra", False),
        ("races/#", "races/r1/positions", True),
        ("races/#", "races", True),
        ("#", "anything/at/all", True),
        ("+/+", "a/b", True),
        ("+/+", "a", False),
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("#", "$aws/things/x/shadow/update", False),
        ("$aws/things/+/shadow/update", "$aws/things/x/shadow/update", True),
    ],
)
def test_topic_filters_follow_mqtt_wildcards(topic_filter, topic, expected):
    assert topic_matches(topic_filter, topic) is expected


@pytest.mark.parametrize("bad", ["", "a/+", "a/#", "x" * 300])
def test_invalid_topic_names_are_refused(bad):
    with pytest.raises(InvalidTopicError):
        validate_topic(bad)


@pytest.mark.parametrize("bad", ["", "a/#/b", "a/b#", "a/+b"])
def test_invalid_topic_filters_are_refused(bad):
    with pytest.raises(InvalidTopicError):
        validate_filter(bad)


def test_select_star_passes_the_payload_through_byte_for_byte():
    # Given a payload with its own formatting
    raw = b'{ "raceId" : "r-1",  "n": 1.50 }'
    query = parse_sql("SELECT * FROM 'races/+/positions'")
    # When it is selected
    result = query.select(EvalContext(message(raw)))
    # Then the action gets the very same bytes
    assert result.payload == raw
    assert query.topic_filter == "races/+/positions"


def test_select_star_of_a_binary_payload_is_the_binary_payload():
    query = parse_sql("SELECT * FROM 'bin'")
    ctx = EvalContext(message(b"\x00\xff\x10", topic="bin"))
    assert query.matches(ctx)
    assert query.select(ctx).payload == b"\x00\xff\x10"


def test_select_named_fields_nested_paths_aliases_and_functions():
    query = parse_sql(
        "SELECT raceId, pos.lat AS lat, laps[1] AS lastLap, speed * 2 AS double, "
        "topic(2) AS race, clientid() AS device, timestamp() AS ts, missing "
        "FROM 'races/+/positions'"
    )
    result = json.loads(query.select(EvalContext(message())).payload)
    # A missing field is Undefined and left out, as on AWS.
    assert result == {
        "raceId": "r-42",
        "lat": 1.5,
        "lastLap": 4,
        "double": 25.0,
        "race": "r-42",
        "device": "bike-7",
        "ts": 1_700_000_000_123,
    }


def test_select_star_with_extra_fields_merges_them_into_the_object():
    query = parse_sql("SELECT *, topic() AS topic FROM 'races/#'")
    result = json.loads(query.select(EvalContext(message())).payload)
    assert result == {**POSITION, "topic": "races/r-42/positions"}


def test_select_value_returns_the_bare_value():
    query = parse_sql("SELECT VALUE pos FROM 'races/#'")
    assert json.loads(query.select(EvalContext(message())).payload) == {"lat": 1.5, "lon": 2.5}


def test_a_field_called_value_is_still_a_field():
    query = parse_sql("SELECT value FROM 't'")
    assert json.loads(query.select(EvalContext(message({"value": 3}, topic="t"))).payload) == {"value": 3}


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("speed > 10", True),
        ("speed > 20", False),
        ("speed >= 12.5 AND riderId = 7", True),
        ("speed < 1 OR raceId = 'r-42'", True),
        ("NOT (riderId <> 7)", True),
        ("pos.lat = 1.5", True),
        ("laps[0] = 3", True),
        ("missing = 1", False),
        ("missing <> 1", False),
        ("missing IS UNDEFINED", True),
        ("raceId IS NOT NULL", True),
        ("raceId = 7", False),
        ("topic(1) = 'races'", True),
        ("upper(raceId) = 'R-42'", True),
        ("riderId % 2 = 1 AND riderId / 2 = 3", True),
        ("startswith = 1", False),
    ],
)
def test_where_clause_on_json_fields(where, expected):
    query = parse_sql(f"SELECT * FROM 'races/+/positions' WHERE {where}")
    assert query.matches(EvalContext(message())) is expected


def test_where_on_a_binary_payload_is_false_not_an_error():
    query = parse_sql("SELECT * FROM 'bin' WHERE speed > 1")
    assert query.matches(EvalContext(message(b"\x01\x02", topic="bin"))) is False


@pytest.mark.parametrize(
    "bad",
    [
        "SELECT * FROM topic",
        "SELECT FROM 'a'",
        "SELECT * FROM 'a/#/b'",
        "SELECT * FROM 'a' WHERE",
        "SELECT nosuchfunction() FROM 'a'",
        "UPDATE x",
        "SELECT * FROM 'a' WHERE x = 'unterminated",
    ],
)
def test_invalid_sql_is_refused_with_a_clear_error(bad):
    with pytest.raises(SqlError):
        parse_sql(bad)


def test_expressions_evaluate_literals_and_functions():
    assert evaluate("concat(raceId, '-', riderId)") == "r-42-7"
    assert evaluate("'it''s'") == "it's"
    assert evaluate("[riderId, speed]") == [7, 12.5]
    assert evaluate("{'id': riderId}") == {"id": 7}
    assert evaluate("get(laps, 1)") == 4
    assert evaluate("abs(-3)") == 3
    assert evaluate("coalesce(missing, raceId)") == "r-42"
    assert evaluate("1 / 0") is UNDEFINED
    assert evaluate("topic(9)") is UNDEFINED
    assert evaluate("lower(riderId)") is UNDEFINED


def render(template: str, msg: IotMessage | None = None) -> str:
    return SubstitutionTemplate.parse(template).render(EvalContext(msg or message()))


def test_substitution_templates_cover_the_documented_functions():
    assert render("${raceId}") == "r-42"
    assert render("${topic()}") == "races/r-42/positions"
    assert render("${topic(2)}") == "r-42"
    assert render("${topic(3)}/${riderId}") == "positions/7"
    assert render("${clientid()}") == "bike-7"
    assert render("${timestamp()}") == "1700000000123"
    assert render("race-${pos.lat}") == "race-1.5"
    assert render("${concat(raceId, ':', riderId)}") == "r-42:7"
    assert render("plain text") == "plain text"
    assert SubstitutionTemplate.parse("plain").is_constant


def test_newuuid_is_a_fresh_uuid_per_evaluation():
    first, second = render("${newuuid()}"), render("${newuuid()}")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", first)
    assert first != second


def test_an_undefined_substitution_renders_empty():
    # The Kinesis action then refuses the empty key and the error action gets the message.
    assert render("${missingField}") == ""
    assert render("k-${missingField}") == "k-"


def test_substitution_templates_reject_broken_expressions():
    with pytest.raises(SqlError):
        SubstitutionTemplate.parse("${raceId")
    with pytest.raises(SqlError):
        SubstitutionTemplate.parse("${raceId +}")


def test_templates_with_braces_inside_strings_and_objects():
    assert render("${get({'a': raceId}, 'a')}") == "r-42"
    assert render("${concat('}', raceId)}") == "}r-42"


def test_clientid_of_a_data_plane_publish_is_not_empty():
    # Data-plane publishes have no MQTT client id.
    assert render("${clientid()}", message(client_id="")) == "n/a"
