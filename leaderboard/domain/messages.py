"""The racer message contract and how a message becomes a score contribution.

A message is the JSON a bike (or the simulator) sends once per second::

    {"event": "update", "deviceTimestamp": 1700000000123, "second": 17, "raceId": 5400802,
     "name": "Ada", "racerId": 101, "classId": 3, "cadence": 72, "resistance": 55}

Extra fields are allowed and ignored.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

# Scores are kept in hundredths of an output unit, as integers: with the sample's integer cadence and
# resistance the formula is exact in hundredths, and integer sums are associative, which the
# order-insensitive merge relies on (float sums are not).
OUTPUT_SCALE = 100
MAX_SECOND = 86_399  # a race lasts at most a day; keeps the per-racer seconds bitmap bounded
MAX_NAME_LENGTH = 64


class MalformedMessageError(ValueError):
    """A payload that can never become a valid :class:`RacerMessage` (bad JSON, types or ranges)."""


class RacerMessage(BaseModel):
    """One racer's reading for one second of a race."""

    # Constraints are declared rather than written as Python validators so that validation runs
    # entirely in pydantic's compiled core: the aggregator validates every message of every batch.
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, str_strip_whitespace=True)

    event: Literal["update", "final"]
    device_timestamp: StrictInt = Field(alias="deviceTimestamp", ge=0)
    second: StrictInt = Field(ge=0, le=MAX_SECOND)
    race_id: StrictInt = Field(alias="raceId", ge=1)
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    racer_id: StrictInt = Field(alias="racerId", ge=0)
    class_id: StrictInt = Field(alias="classId", ge=0)
    # Bikes report whole numbers; fractional values are accepted and rounded in output_centi.
    # Strict types: JSON true/false or "72" are not a cadence.
    cadence: float = Field(strict=True, ge=0, le=250)
    resistance: float = Field(strict=True, ge=0, le=250)

    @property
    def is_final(self) -> bool:
        """True for the racer's last message of the race."""
        return self.event == "final"

    @property
    def output_centi(self) -> int:
        """This second's output in hundredths: ``(cadence + 35) * (resistance + 65)``."""
        return output_centi(self.cadence, self.resistance)


def output_centi(cadence: float, resistance: float) -> int:
    """The sample's formula ``(cadence + 35) * (resistance + 65) / 100``, in hundredths."""
    return round((cadence + 35) * (resistance + 65))


def centi_to_output(value: int) -> float:
    """Hundredths back to output units, for display and the API."""
    return round(value / OUTPUT_SCALE, 2)


def parse_message(payload: bytes | str) -> RacerMessage:
    """Parse and validate one JSON message; raise :class:`MalformedMessageError` with the reason."""
    try:
        return RacerMessage.model_validate_json(payload)
    except ValidationError as exc:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}" for err in exc.errors()
        )
        raise MalformedMessageError(reasons) from exc
