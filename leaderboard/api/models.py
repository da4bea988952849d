"""The API's response bodies (camelCase JSON), which the OpenAPI schema documents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

Timestamp = Annotated[
    str,
    Field(json_schema_extra={"format": "date-time"}, examples=["2026-11-21T16:35:37.123Z"]),
]


def iso(ts: datetime) -> str:
    """A :data:`Timestamp`: UTC ISO-8601 with milliseconds and a Z (``2026-11-21T16:35:37.123Z``)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


RaceStatus = Literal["live", "final"]
TOTAL_OUTPUT = (
    "Sum of the output of each distinct second counted, each second rounded half-up at four decimals "
    "as the original Alleycat sample does; up to four decimals."
)
NextCursor = Annotated[
    str | None,
    Field(description="Pass as `cursor` to get the next page; null on the last page."),
]


class ApiModel(BaseModel):
    """Base of every body: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class ErrorBody(ApiModel):
    """Every 4xx/5xx answer."""

    message: str


class RaceListing(ApiModel):
    """One race in a race list."""

    race_id: int
    class_id: int
    status: RaceStatus
    racers: int = Field(description="Racers seen so far.")
    updated_at: Timestamp


class RaceList(ApiModel):
    """A page of races, newest start first."""

    races: list[RaceListing]
    next_cursor: NextCursor = None


class RaceStanding(ApiModel):
    """A racer's place in a race. Outputs are in output units, with up to four decimals."""

    rank: int = Field(description="Competition rank: equal totals share a rank (1, 1, 3).")
    racer_id: int
    name: str
    total_output: float = Field(description=TOTAL_OUTPUT)
    output: float = Field(description="Output of the latest second counted (up to four decimals).")
    second: int = Field(description="The latest second counted.")


class RaceHeader(ApiModel):
    """What every race-level body starts with."""

    race_id: int
    class_id: int
    status: RaceStatus
    updated_at: Timestamp


class RaceLeaderboard(RaceHeader):
    """A page of a race's standings in rank order."""

    standings: list[RaceStanding]
    next_cursor: NextCursor = None


class RacerNeighbourhood(RaceHeader):
    """A racer's standing and the racers around it."""

    racer: RaceStanding
    neighbours: list[RaceStanding] = Field(
        description="Up to `around` racers above and below, the racer included, in rank order."
    )


class ClassStanding(ApiModel):
    """A racer's all-time personal best in a class."""

    rank: int = Field(description="Competition rank: equal bests share a rank (1, 1, 3).")
    racer_id: int
    name: str
    total_output: float = Field(description=TOTAL_OUTPUT)
    race_id: int = Field(description="The race the best was set in.")
    achieved_at: Timestamp


class ClassLeaderboard(ApiModel):
    """A page of a class's personal-best board in rank order."""

    class_id: int
    standings: list[ClassStanding]
    next_cursor: NextCursor = None
