"""Accumulating a tumbling window's messages in the Lambda window state.

Lambda carries a window's state between invocations as JSON and limits it to 1 MB per shard, so the
state is encoded compactly: per race, per racer ``[name, finalSecond or -1, [second, output, ...]]``
(a flat list, which JSON parsers turn into Python objects without per-entry work here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import chain
from typing import Any

import orjson

from leaderboard.domain.messages import RacerMessage
from leaderboard.domain.race import RaceDelta
from leaderboard.domain.scoring import RacerDelta

STATE_VERSION = 2
# Lambda rejects window state over 1 MB; past this budget the aggregator writes what it has early
# (merging is idempotent, so an early write is only a cost, never a double count).
DEFAULT_STATE_BUDGET_BYTES = 768 * 1024


class StateFormatError(ValueError):
    """The window state is not one this code wrote."""


class WindowAccumulator:
    """Per-race, per-racer outputs of one window (or one batch when windows are off)."""

    def __init__(self, races: dict[int, RaceDelta] | None = None) -> None:
        """Start empty, or from already-decoded race deltas."""
        self.races: dict[int, RaceDelta] = races if races is not None else {}

    def add(self, message: RacerMessage) -> None:
        """Fold one valid message in."""
        race = self.races.get(message.race_id)
        if race is None:
            race = self.races[message.race_id] = RaceDelta(race_id=message.race_id, class_id=message.class_id)
        race.add(message)

    def add_all(self, messages: Iterable[RacerMessage]) -> None:
        """Fold many messages in."""
        for message in messages:
            self.add(message)

    def merge(self, other: WindowAccumulator) -> None:
        """Fold another accumulator in (union; idempotent)."""
        for race_id, delta in other.races.items():
            mine = self.races.get(race_id)
            self.races[race_id] = delta if mine is None else mine.join(delta)

    @property
    def is_empty(self) -> bool:
        """True when nothing has been accumulated."""
        return not self.races

    @property
    def messages(self) -> int:
        """Messages folded in (duplicates included)."""
        return sum(r.messages for r in self.races.values())

    def to_state(self) -> dict[str, Any]:
        """The JSON-serialisable window state."""
        races: dict[str, Any] = {}
        for race_id, race in self.races.items():
            racers = {
                str(racer_id): [
                    delta.name,
                    -1 if delta.final_second is None else delta.final_second,
                    list(chain.from_iterable(delta.outputs.items())),
                ]
                for racer_id, delta in race.racers.items()
            }
            races[str(race_id)] = {
                "c": race.class_id,
                "t0": race.first_device_ts,
                "t1": race.last_device_ts,
                "m": race.messages,
                "r": racers,
            }
        return {"v": STATE_VERSION, "races": races}

    def state_size(self) -> int:
        """Bytes the state takes as JSON (what counts against Lambda's 1 MB limit)."""
        return len(orjson.dumps(self.to_state()))

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> WindowAccumulator:
        """Rebuild from a state this class wrote; ``None`` or ``{}`` is an empty window."""
        if not state:
            return cls()
        if state.get("v") != STATE_VERSION or not isinstance(state.get("races"), dict):
            raise StateFormatError(f"unsupported window state (v={state.get('v')!r})")
        races: dict[int, RaceDelta] = {}
        try:
            for race_key, race in state["races"].items():
                racers: dict[int, RacerDelta] = {}
                for racer_key, (name, final_second, flat) in race["r"].items():
                    outputs = dict(zip(flat[::2], flat[1::2], strict=True))
                    racers[int(racer_key)] = RacerDelta(
                        name=name,
                        outputs=outputs,
                        final_second=None if final_second < 0 else final_second,
                    )
                races[int(race_key)] = RaceDelta(
                    race_id=int(race_key),
                    class_id=int(race["c"]),
                    racers=racers,
                    first_device_ts=int(race["t0"]),
                    last_device_ts=int(race["t1"]),
                    messages=int(race["m"]),
                )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateFormatError(f"corrupt window state: {exc}") from exc
        return cls(races)
