"""The effort model: how hard each simulated racer pedals, second by second.

Each racer has an ability that sets their typical cadence and resistance. Over the race, effort
warms up in the first seconds, fades with a personal fatigue rate, and rises again in a final
sprint; a slow random drift (an AR(1) process) and small per-second noise make each ride look
alive. Resistance moves in steps, like a rider changing gear, rather than jittering every second.

Everything is drawn from a ``random.Random`` the caller seeds, in a fixed order, so the same seed
gives the same ride.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CADENCE_MIN, CADENCE_MAX = 30, 90
RESISTANCE_MIN, RESISTANCE_MAX = 33, 86

# Drift keeps 90% of itself each second: changes are smooth over ~10 s, not second-to-second noise.
_DRIFT_MEMORY = 0.9


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


@dataclass(frozen=True, slots=True)
class RacerProfile:
    """A racer's fixed traits, drawn once per race."""

    racer_id: int
    name: str
    ability: float  # 0..1
    cadence_base: float
    resistance_base: float
    warmup_seconds: float
    fatigue: float  # fraction of effort lost by the end of the race
    sprint_boost: float  # fraction of effort added in the final sprint
    sprint_start: int  # first second of the sprint
    clock_offset_ms: int  # where in each second this racer's device reports


def draw_profile(rng: random.Random, racer_id: int, name: str, duration: int) -> RacerProfile:
    """Draw one racer's traits."""
    ability = _clamp(rng.gauss(0.5, 0.18), 0.02, 0.98)
    cadence_base = 47.0 + 33.0 * ability + rng.gauss(0.0, 3.0)
    # Strong riders also push bigger gears, but not in lockstep with cadence.
    resistance_base = 44.0 + 30.0 * (0.7 * ability + 0.3 * rng.random())
    sprint_length = max(2, round(duration * rng.uniform(0.04, 0.12)))
    return RacerProfile(
        racer_id=racer_id,
        name=name,
        ability=ability,
        cadence_base=cadence_base,
        resistance_base=resistance_base,
        warmup_seconds=rng.uniform(5.0, 20.0),
        fatigue=rng.uniform(0.03, 0.16),
        sprint_boost=rng.uniform(0.0, 0.14) * (0.5 + ability),
        sprint_start=max(1, duration - sprint_length + 1),
        clock_offset_ms=rng.randrange(0, 900),
    )


class RacerEffort:
    """A racer's evolving state: call :meth:`step` once per second, in order."""

    __slots__ = ("_cadence_drift", "_duration", "_gear", "profile")

    def __init__(self, profile: RacerProfile, duration: int) -> None:
        self.profile = profile
        self._duration = duration
        self._cadence_drift = 0.0
        self._gear = 0.0  # resistance offset from the base, changed in steps

    def step(self, rng: random.Random, second: int) -> tuple[int, int]:
        """Cadence and resistance for ``second`` (1-based), as integers within their ranges."""
        p = self.profile
        progress = (second - 1) / (self._duration - 1) if self._duration > 1 else 1.0
        warm = 0.82 + 0.18 * min(1.0, second / p.warmup_seconds)
        fade = 1.0 - p.fatigue * progress
        sprint = 1.0 + p.sprint_boost if second >= p.sprint_start else 1.0

        self._cadence_drift = _DRIFT_MEMORY * self._cadence_drift + rng.gauss(0.0, 1.1)
        cadence = p.cadence_base * warm * fade * sprint + self._cadence_drift + rng.gauss(0.0, 1.2)

        # Gear changes: rare, a few points at a time, pulled back towards the base.
        if rng.random() < 0.06:
            self._gear += rng.choice((-1, 1)) * rng.randint(1, 4) - 0.2 * self._gear
        resistance = p.resistance_base * (1.0 - 0.4 * p.fatigue * progress) * sprint + self._gear

        return (
            round(_clamp(cadence, CADENCE_MIN, CADENCE_MAX)),
            round(_clamp(resistance, RESISTANCE_MIN, RESISTANCE_MAX)),
        )
