"""Each function's configuration: a pydantic model validated from the environment at first use.

Handlers call the cached factories below; logic receives plain values and never reads os.environ.
Nothing is built at import time, so tests set the environment (or call the builders) freely.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError

# Lambda rejects tumbling-window state over 1 MB; past this budget the aggregator writes what it has
# early (merging is idempotent, so an early write is only a cost, never a double count). Defined here,
# not in the aggregator's state codec, so the other functions' settings do not pull that code in.
DEFAULT_STATE_BUDGET_BYTES = 768 * 1024


class ConfigurationError(RuntimeError):
    """The function's environment is missing or invalid; the message names the variables."""


class AggregatorSettings(BaseModel):
    """Environment of the window aggregator."""

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    failure_queue_url: str = Field(alias="FAILURE_QUEUE_URL", min_length=1)
    state_budget_bytes: int = Field(
        alias="STATE_BUDGET_BYTES", default=DEFAULT_STATE_BUDGET_BYTES, ge=1024, le=1_000_000
    )


class PublisherSettings(BaseModel):
    """Environment of the standings publisher."""

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    topic_prefix: str = Field(alias="TOPIC_PREFIX", default="alleycat")
    top_n: int = Field(alias="TOP_N", default=50, ge=1, le=500)
    # The account's IoT data endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`);
    # looked up at cold start when empty.
    iot_data_endpoint: str = Field(alias="IOT_DATA_ENDPOINT", default="")


class RaceCloserSettings(BaseModel):
    """Environment of the scheduled race closer."""

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    grace_seconds: int = Field(alias="RACE_GRACE_SECONDS", default=120, ge=1)


M = TypeVar("M", bound=BaseModel)


def _load(model: type[M]) -> M:
    try:
        return model.model_validate(dict(os.environ))
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid {model.__name__} environment: {problems}") from exc


@cache
def aggregator_settings() -> AggregatorSettings:
    """The aggregator's settings, validated once per execution environment."""
    return _load(AggregatorSettings)


@cache
def publisher_settings() -> PublisherSettings:
    """The publisher's settings, validated once per execution environment."""
    return _load(PublisherSettings)


@cache
def race_closer_settings() -> RaceCloserSettings:
    """The race closer's settings, validated once per execution environment."""
    return _load(RaceCloserSettings)
