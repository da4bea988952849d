"""The racer message contract and how a message becomes a score contribution.

A message is the JSON a bike (or the simulator) sends once per second::

    {"event": "update", "deviceTimestamp": 1700000000123, "second": 17, "raceId": 5400802,
     "name": "Ada", "racerId": 101, "classId": 3, "cadence": 72, "resistance": 55}

Extra fields are allowed and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress
from operator import itemgetter, sub
from typing import Annotated, Any, Literal, NamedTuple, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError
from typing_extensions import TypedDict

# Scores are kept in ten-thousandths of an output unit, as integers. The original Alleycat sample's
# devices send fractional cadence and resistance and its tumbling function keeps each second's output
# rounded half-up at 4 decimals, so ten-thousandths hold those values exactly; and integer sums are
# associative, which the order-insensitive merge relies on (float sums are not).
OUTPUT_SCALE = 10_000
# The longest race is three hours (seconds 0 .. 10,799); later seconds are malformed and quarantined.
# It bounds each racer's seconds bitmap (1,350 bytes), and so a standings bucket of 100 racers: even
# uncompressed, with 64-character names and any seconds pattern, a bucket stays under DynamoDB's
# 400 KB item limit (a day's bitmap would not: sparse seconds compress badly, ~10 KB a racer).
MAX_SECOND = 10_799
MAX_NAME_LENGTH = 64
MAX_EFFORT = 250  # cadence and resistance


class MalformedMessageError(ValueError):
    """A payload that can never become a valid :class:`RacerMessage` (bad JSON, types or ranges)."""


# The contract's field rules, declared once and shared by RacerMessage (an object for callers) and
# RacerReading (a plain dict for the aggregator's hot path), so both accept exactly the same payloads.
# They are declared rather than written as Python validators so validation runs entirely in
# pydantic's compiled core.
EventKind = Literal["update", "final"]
DeviceTimestamp = Annotated[StrictInt, Field(ge=0)]
Second = Annotated[StrictInt, Field(ge=0, le=MAX_SECOND)]
RaceId = Annotated[StrictInt, Field(ge=1)]
RacerName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH)]
RacerId = Annotated[StrictInt, Field(ge=0)]
ClassId = Annotated[StrictInt, Field(ge=0)]
# Bikes may report fractional values (the original sample's simulator mostly does); see output_e4.
# Strict: JSON true/false or "72" are not a cadence.
Effort = Annotated[float, Field(strict=True, ge=0, le=MAX_EFFORT)]
_MESSAGE_CONFIG = ConfigDict(extra="ignore", str_strip_whitespace=True)


class RacerReading(TypedDict):
    """A validated message as a plain dict keyed by the wire names (see :class:`RacerMessage`).

    The aggregator validates whole batches into these: a dict costs a fraction of a model instance,
    and the rules are the very same annotated types.
    """

    __pydantic_config__ = _MESSAGE_CONFIG  # type: ignore[misc]

    event: EventKind
    deviceTimestamp: DeviceTimestamp
    second: Second
    raceId: RaceId
    name: RacerName
    racerId: RacerId
    classId: ClassId
    cadence: Effort
    resistance: Effort


class RacerMessage(BaseModel):
    """One racer's reading for one second of a race."""

    model_config = ConfigDict(**_MESSAGE_CONFIG, frozen=True, populate_by_name=True)

    event: EventKind
    device_timestamp: DeviceTimestamp = Field(alias="deviceTimestamp")
    second: Second
    race_id: RaceId = Field(alias="raceId")
    name: RacerName
    racer_id: RacerId = Field(alias="racerId")
    class_id: ClassId = Field(alias="classId")
    cadence: Effort
    resistance: Effort

    @property
    def is_final(self) -> bool:
        """True for the racer's last message of the race."""
        return self.event == "final"

    @property
    def output_e4(self) -> int:
        """This second's output in ten-thousandths (see :func:`output_e4`)."""
        return output_e4(self.cadence, self.resistance)

    def to_reading(self) -> RacerReading:
        """The same message as a :class:`RacerReading`."""
        reading: Any = self.model_dump(by_alias=True)
        return reading  # type: ignore[no-any-return]


def output_e4(cadence: float, resistance: float) -> int:
    """The sample's ``(cadence + 35) * (resistance + 65) / 100`` in ten-thousandths, rounded as it does.

    The original's tumbling function computes the formula in doubles and keeps
    ``Number(Math.round(output + 'e4') + 'e-4')``: it appends an exponent to the double's shortest
    decimal representation, parses that back into a double and rounds it, a half towards +infinity.
    So it rounds the *printed* value, not the binary one: ``94.41125`` (in binary 94.41124999...)
    becomes 94.4113, and ``56.385349999999995`` becomes 56.3854 too, because the string
    ``56.385349999999995e4`` parses to the double 563853.5. This function takes the same steps.
    """
    if type(cadence) is int and type(resistance) is int:
        # An integer product over 100 has at most two decimals: every step above is exact.
        return (cadence + 35) * (resistance + 65) * 100
    shifted = float(repr((cadence + 35) * (resistance + 65) / 100) + "e4")  # Number(output + 'e4')
    whole = math.floor(shifted)
    return whole + 1 if shifted - whole >= 0.5 else whole  # Math.round (outputs are positive)


# How far, in ten-thousandths, a double computation of the shifted output may stray from the value
# the original rounds. The errors of the steps add up to a few 1e-9 for outputs below 1,000 (the
# validator caps cadence and resistance at MAX_EFFORT, so outputs stay below 900); the margin is ample.
_ROUNDING_DOUBT = 1e-6
_SURE_WITHIN = 0.5 - _ROUNDING_DOUBT


def outputs_e4(cadences: Sequence[float], resistances: Sequence[float]) -> list[int]:
    """:func:`output_e4` of each (cadence, resistance) pair: the aggregator's hot path, per batch.

    Exactly the same values, faster: integer pairs are exact products; fractional ones are rounded
    from one double multiplication, which can only disagree with the original's rounding of the
    printed value for a result within :data:`_ROUNDING_DOUBT` of a half. Those are found in C-level
    passes and only they take the exact path (with the original simulator's fractional efforts,
    about one output in thirty prints with a 5 at the fifth decimal).
    """
    if set(map(type, cadences)) | set(map(type, resistances)) <= _INT:
        whole_cadences, whole_resistances = cast(Sequence[int], cadences), cast(Sequence[int], resistances)
        return [(c + 35) * (r + 65) * 100 for c, r in zip(whole_cadences, whole_resistances, strict=True)]
    shifted = [(c + 35) * (r + 65) * 100 for c, r in zip(cadences, resistances, strict=True)]
    nearest: list[int] = list(map(round, shifted))
    doubtful = list(map(_SURE_WITHIN.__lt__, map(abs, map(sub, shifted, nearest))))
    if True in doubtful:
        for index in compress(range(len(shifted)), doubtful):
            nearest[index] = output_e4(cadences[index], resistances[index])
    return nearest


def e4_to_output(value: int) -> float:
    """Ten-thousandths back to output units (at most 4 decimals), for display and the API.

    Integer division rounds correctly, so the float is the one nearest to the 4-decimal value and
    prints as exactly those digits.
    """
    return value / OUTPUT_SCALE


_READING = TypeAdapter(RacerReading)
_READINGS = TypeAdapter(list[RacerReading])


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}" for err in exc.errors()
    )


def parse_message(payload: bytes | str) -> RacerMessage:
    """Parse and validate one JSON message; raise :class:`MalformedMessageError` with the reason."""
    try:
        return RacerMessage.model_validate_json(payload)
    except ValidationError as exc:
        raise MalformedMessageError(_reasons(exc)) from exc


def parse_reading(payload: bytes | str) -> RacerReading:
    """Like :func:`parse_message`, into a :class:`RacerReading` (same rules, same reasons)."""
    try:
        return _READING.validate_json(payload)
    except ValidationError as exc:
        raise MalformedMessageError(_reasons(exc)) from exc


def parse_reading_array(array: bytes | str) -> list[RacerReading]:
    """Validate a JSON array of messages in one call (the aggregator's batch path).

    Raises :class:`MalformedMessageError` if the array or any element is not valid; the caller then
    judges the messages one by one to find the bad ones.
    """
    try:
        return _READINGS.validate_json(array)
    except ValidationError as exc:
        raise MalformedMessageError(_reasons(exc)) from exc


class ReadingColumns(NamedTuple):
    """Valid messages as columns (one tuple per field, in message order): how the aggregator folds them."""

    race_ids: tuple[int, ...]
    racer_ids: tuple[int, ...]
    seconds: tuple[int, ...]
    cadences: tuple[float, ...]
    resistances: tuple[float, ...]
    names: tuple[str, ...]
    device_timestamps: tuple[int, ...]
    events: tuple[str, ...]
    class_ids: tuple[int, ...]


_COLUMN_FIELDS = (
    "raceId", "racerId", "second", "cadence", "resistance", "name", "deviceTimestamp", "event", "classId"
)  # fmt: skip
# One C-level pass per field: cheaper than one tuple per message transposed afterwards.
_GETTERS = tuple(itemgetter(name) for name in _COLUMN_FIELDS)
EMPTY_COLUMNS = ReadingColumns((), (), (), (), (), (), (), (), ())
_INT = {int}
_NUMBER = {int, float}
_EVENTS = {"update", "final"}


def columns_of(readings: list[RacerReading]) -> ReadingColumns:
    """Already validated readings as columns."""
    if not readings:
        return EMPTY_COLUMNS
    return ReadingColumns(*[tuple(map(getter, readings)) for getter in _GETTERS])


def quick_columns(array: bytes) -> ReadingColumns | None:
    """A JSON array of messages as columns if every message is *plainly* valid, else ``None``.

    The batch path's first try: JSON is parsed by orjson and :class:`RacerReading`'s rules are
    checked a column at a time (types, ranges, lengths) in C-level passes, which costs about half
    of validating each object. It accepts only what the model accepts unchanged: anything the model
    would coerce or strip (e.g. a name with surrounding spaces, an integer beyond 64 bits) or
    reject returns ``None``, and the caller then lets pydantic decide (``parse_reading_array``).
    Unit tests check on generated payloads that it never accepts what the model rejects.
    """
    try:
        items = orjson.loads(array)
    except orjson.JSONDecodeError:
        return None
    if type(items) is not list:
        return None
    if not items:
        return EMPTY_COLUMNS
    if set(map(type, items)) != {dict}:
        return None
    try:
        columns = ReadingColumns(*[tuple(map(getter, items)) for getter in _GETTERS])
    except KeyError:
        return None
    race_ids, racer_ids, seconds, cadences, resistances, names, timestamps, events, class_ids = columns
    for column, low in ((race_ids, 1), (racer_ids, 0), (seconds, 0), (timestamps, 0), (class_ids, 0)):
        # type() rather than isinstance(): JSON true/false are bools, which StrictInt refuses.
        if set(map(type, column)) != _INT or min(column) < low:
            return None
    if max(seconds) > MAX_SECOND:
        return None
    for effort in (cadences, resistances):
        if not set(map(type, effort)) <= _NUMBER or min(effort) < 0 or max(effort) > MAX_EFFORT:
            return None
    if set(map(type, events)) != {str} or not set(events) <= _EVENTS:
        return None
    if set(map(type, names)) != {str}:
        return None
    lengths = list(map(len, names))
    if min(lengths) < 1 or max(lengths) > MAX_NAME_LENGTH or list(map(str.strip, names)) != list(names):
        return None
    return columns
