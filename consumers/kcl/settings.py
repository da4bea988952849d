"""The KCL record processor's configuration: a pydantic model validated from its environment.

The MultiLangDaemon starts the processor as a child process, which inherits the daemon's
environment; :mod:`consumers.kcl.daemon` sets these variables when it starts the daemon.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, Field, ValidationError

from consumers.settings import ConfigurationError


class KclSettings(BaseModel):
    """Environment of a KCL record processor."""

    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    failure_queue_url: str = Field(alias="FAILURE_QUEUE_URL", min_length=1)
    stream_arn: str = Field(alias="STREAM_ARN", min_length=1)
    # The Lambda path's TumblingWindowInSeconds: how long a window accumulates before it merges.
    window_seconds: float = Field(alias="WINDOW_SECONDS", default=5.0, gt=0, le=900)
    max_window_messages: int = Field(alias="MAX_WINDOW_MESSAGES", default=200_000, ge=1)
    # Where boto3 sends the processor's own calls (DynamoDB, SQS); empty: AWS's endpoints.
    endpoint_url: str = Field(alias="AWS_ENDPOINT_URL", default="")


def kcl_settings() -> KclSettings:
    """The processor's settings from the environment (raises :class:`ConfigurationError`)."""
    try:
        return KclSettings.model_validate(dict(os.environ))
    except ValidationError as exc:
        problems = "; ".join(f"{e['loc'][0]}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid KclSettings environment: {problems}") from exc
