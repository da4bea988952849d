"""Each function's configuration, read from its environment once (at cold start), validated."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessorSettings:
    """What the processing function needs."""

    table_name: str
    tail_call_topic_arn: str
    # How long one invocation keeps taking tasks before it hands over with a tail call.
    processing_window_s: float
    # Legacy calls per task at most (an UNAVAILABLE answer is retried until then).
    max_attempts: int
    legacy_capacity_per_s: float
    legacy_ledger_path: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> ProcessorSettings:
        """Read and check the variables template.yaml sets."""
        settings = cls(
            table_name=env["TASK_TABLE"],
            tail_call_topic_arn=env["TAIL_CALL_TOPIC_ARN"],
            processing_window_s=float(env.get("PROCESSING_WINDOW_SECONDS", "60")),
            max_attempts=int(env.get("MAX_ATTEMPTS", "3")),
            legacy_capacity_per_s=float(env.get("LEGACY_CAPACITY_PER_SECOND", "10")),
            legacy_ledger_path=env.get("LEGACY_LEDGER_PATH") or None,
        )
        if (
            settings.processing_window_s <= 0
            or settings.max_attempts < 1
            or settings.legacy_capacity_per_s <= 0
        ):
            raise ValueError(f"invalid processor settings: {settings}")
        return settings


@dataclass(frozen=True)
class TriggerSettings:
    """What the trigger function needs."""

    table_name: str
    processor_function: str

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> TriggerSettings:
        """Read the variables template.yaml sets."""
        return cls(table_name=env["TASK_TABLE"], processor_function=env["PROCESSOR_FUNCTION"])


@dataclass(frozen=True)
class FifoSettings:
    """What the FIFO baseline's consumer needs (the benchmark's SQS queue → the same legacy system)."""

    task_ttl_s: float
    legacy_capacity_per_s: float
    legacy_ledger_path: str | None = None

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> FifoSettings:
        """Read the variables the FIFO baseline's template sets."""
        return cls(
            task_ttl_s=float(env.get("TASK_TTL_SECONDS", "300")),
            legacy_capacity_per_s=float(env.get("LEGACY_CAPACITY_PER_SECOND", "10")),
            legacy_ledger_path=env.get("LEGACY_LEDGER_PATH") or None,
        )
