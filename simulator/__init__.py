"""Race simulator: N racers per class, one Alleycat message per racer per second.

Use :func:`plan_races` and :func:`generate_race_messages` to produce messages deterministically,
and :class:`RaceRunner` to play them in (scaled) real time into a :class:`producers.KinesisProducer`
or any :class:`MessageSink`. ``python -m simulator --help`` runs it from the command line.
"""

from simulator.effort import CADENCE_MAX, CADENCE_MIN, RESISTANCE_MAX, RESISTANCE_MIN, RacerProfile
from simulator.race import (
    DEFAULT_DURATION,
    MAX_CLASSES,
    MAX_RACERS,
    Message,
    RaceSpec,
    all_race_messages,
    derive_race_id_base,
    generate_race_messages,
    plan_races,
)
from simulator.runner import (
    JsonLinesSink,
    MessageSink,
    ProgressCallback,
    RaceRunner,
    RunnerStats,
    RunSummary,
)

__all__ = [
    "CADENCE_MAX",
    "CADENCE_MIN",
    "DEFAULT_DURATION",
    "MAX_CLASSES",
    "MAX_RACERS",
    "RESISTANCE_MAX",
    "RESISTANCE_MIN",
    "JsonLinesSink",
    "Message",
    "MessageSink",
    "ProgressCallback",
    "RaceRunner",
    "RaceSpec",
    "RacerProfile",
    "RunSummary",
    "RunnerStats",
    "all_race_messages",
    "derive_race_id_base",
    "generate_race_messages",
    "plan_races",
]
