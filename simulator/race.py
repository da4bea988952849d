"""Races and their messages: a pure, deterministic generator, used live and in dry runs.

The messages of a race are fully determined by its :class:`RaceSpec` (seed, class, racers,
duration, start time and raceId): :func:`generate_race_messages` regenerates exactly what a live
run sent, without waiting for the clock, so tests and replays can compare message for message.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from simulator.effort import RacerEffort, draw_profile
from simulator.names import racer_name

MAX_RACERS = 10_000
MAX_CLASSES = 100
DEFAULT_DURATION = 300
# raceIds stay below 2**53 so JavaScript clients (the leaderboard UI) read them exactly.
MAX_RACE_ID = 2**53 - 1

Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RaceSpec:
    """One race of one class. ``start_epoch_ms`` anchors the messages' ``deviceTimestamp``."""

    race_id: int
    class_id: int
    racers: int
    duration: int = DEFAULT_DURATION
    seed: int = 0
    start_epoch_ms: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.racers <= MAX_RACERS:
            raise ValueError(f"racers must be in 1..{MAX_RACERS}, got {self.racers}")
        if self.duration < 1:
            raise ValueError(f"duration must be >= 1 second, got {self.duration}")
        if not 1 <= self.race_id <= MAX_RACE_ID:
            raise ValueError(f"raceId must be in 1..{MAX_RACE_ID}, got {self.race_id}")
        if self.class_id < 0:
            raise ValueError(f"classId must be >= 0, got {self.class_id}")

    @property
    def message_count(self) -> int:
        """Messages this race produces: one per racer per second."""
        return self.racers * self.duration


def _race_rng(spec: RaceSpec) -> random.Random:
    # A string seed is hashed with SHA-512 by random.Random, so it does not depend on PYTHONHASHSEED.
    # The raceId is left out on purpose: a class rides the same way whatever id the run assigned.
    return random.Random(f"alleycat-race:{spec.seed}:{spec.class_id}:{spec.racers}:{spec.duration}")


def generate_race_messages(spec: RaceSpec) -> Iterator[list[Message]]:
    """Yield, for seconds 1..duration in order, the list of messages of that second (racerId order).

    Every racer sends ``"update"`` each second and ``"final"`` on the last second (``duration``).
    Racer ids are dense, 1..racers. The same spec always yields the same messages.
    """
    rng = _race_rng(spec)
    efforts = [
        RacerEffort(draw_profile(rng, racer_id, racer_name(rng), spec.duration), spec.duration)
        for racer_id in range(1, spec.racers + 1)
    ]
    for second in range(1, spec.duration + 1):
        event = "final" if second == spec.duration else "update"
        second_start_ms = spec.start_epoch_ms + (second - 1) * 1000
        messages: list[Message] = []
        for effort in efforts:
            cadence, resistance = effort.step(rng, second)
            profile = effort.profile
            messages.append(
                {
                    "event": event,
                    "deviceTimestamp": second_start_ms + profile.clock_offset_ms,
                    "second": second,
                    "raceId": spec.race_id,
                    "name": profile.name,
                    "racerId": profile.racer_id,
                    "classId": spec.class_id,
                    "cadence": cadence,
                    "resistance": resistance,
                }
            )
        yield messages


def all_race_messages(spec: RaceSpec) -> list[Message]:
    """Every message of the race, in sending order (convenience for tests and replays)."""
    return [message for second in generate_race_messages(spec) for message in second]


def derive_race_id_base(seed: int, start_epoch_ms: int) -> int:
    """A raceId base from the seed and the start time (to the second), a multiple of 100.

    Same seed and start second, same ids; a later run gets new ids, so it does not mix its
    messages into an earlier run's races. Ten digits, like a timestamp, well below 2**53.
    """
    digest = hashlib.sha256(f"{seed}:{start_epoch_ms // 1000}".encode()).digest()
    return 1_000_000_000 + (int.from_bytes(digest[:8], "big") % 90_000_000) * 100


def plan_races(
    classes: Sequence[int],
    racers: int,
    *,
    duration: int = DEFAULT_DURATION,
    seed: int = 0,
    start_epoch_ms: int = 0,
    race_id_base: int | None = None,
) -> list[RaceSpec]:
    """One race per class, all starting together. RaceIds are ``base + i`` for the i-th class,
    so they never collide within a run; ``base`` is derived from seed and start time unless given.
    """
    if not classes:
        raise ValueError("at least one class is needed")
    if len(classes) > MAX_CLASSES:
        raise ValueError(f"at most {MAX_CLASSES} classes per run, got {len(classes)}")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct, got {list(classes)}")
    base = derive_race_id_base(seed, start_epoch_ms) if race_id_base is None else race_id_base
    if base < 1 or base + len(classes) - 1 > MAX_RACE_ID:
        raise ValueError(f"race id base must be in 1..{MAX_RACE_ID - len(classes) + 1}, got {base}")
    return [
        RaceSpec(
            race_id=base + index,
            class_id=class_id,
            racers=racers,
            duration=duration,
            seed=seed,
            start_epoch_ms=start_epoch_ms,
        )
        for index, class_id in enumerate(classes)
    ]
