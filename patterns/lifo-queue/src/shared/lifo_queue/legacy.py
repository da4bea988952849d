"""A stand-in for the legacy system that validates device connections: it handles at most
``capacity_per_s`` tasks per second, whoever calls it.

It paces its callers (each call waits for its slot), so one caller at a time sees exactly the
configured throughput. Outcomes come from the task's payload, so tests can ask for rejections and
outages: ``{"simulate": "reject"}`` or ``{"simulate": "unavailable"}``; anything else is accepted.
With ``ledger_path`` set, every call is appended there as a JSON line (task id, created, started,
finished, outcome, caller): what reached the legacy system, for tests and the benchmark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path


class Outcome(StrEnum):
    """The legacy system's answer."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    UNAVAILABLE = "UNAVAILABLE"


class LegacySystem:
    """Validates one task per ``1 / capacity_per_s`` seconds at most."""

    def __init__(
        self,
        capacity_per_s: float,
        ledger_path: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if capacity_per_s <= 0:
            raise ValueError("capacity_per_s must be positive")
        self.interval_s = 1.0 / capacity_per_s
        self._ledger = Path(ledger_path) if ledger_path else None
        self._clock = clock
        self._sleep = sleep
        self._next_slot = 0.0

    def validate(self, task_id: str, created: float, payload: dict[str, str], caller: str) -> Outcome:
        """Validate one device connection, waiting for the next free slot first."""
        now = self._clock()
        if self._next_slot > now:
            self._sleep(self._next_slot - now)
        started = self._clock()
        # A slot is one interval long; an idle system does not bank capacity for later bursts.
        self._next_slot = max(self._next_slot, started) + self.interval_s
        outcome = {"reject": Outcome.REJECTED, "unavailable": Outcome.UNAVAILABLE}.get(
            payload.get("simulate", ""), Outcome.ACCEPTED
        )
        if self._ledger is not None:
            entry = {
                "taskId": task_id,
                "created": created,
                "started": started,
                "outcome": str(outcome),
                "caller": caller,
            }
            with self._ledger.open("a", encoding="utf-8") as ledger:
                ledger.write(json.dumps(entry) + "\n")
        return outcome
