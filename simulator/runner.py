"""RaceRunner: plays races second by second into a sink (a Kinesis producer, or JSON lines).

The runner draws nothing itself: it reports a :class:`RunnerStats` snapshot to an optional progress
callback after every race second, so the simulator's own CLI and any other front end can render it
their way.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

import orjson

from producers import FailedRecord, ProducerStats, PutResult
from simulator.race import RaceSpec, generate_race_messages


class MessageSink(Protocol):
    """Where the runner puts encoded messages. :class:`producers.KinesisProducer` is one."""

    def put(self, data: bytes | str, partition_key: str | int) -> None:
        """Queue one record."""
        ...

    def stats(self) -> ProducerStats:
        """Counters so far."""
        ...

    def take_failures(self) -> list[FailedRecord]:
        """Failures collected so far, without waiting."""
        ...

    def flush(self) -> PutResult:
        """Deliver everything queued; return the failures not taken yet."""
        ...


class JsonLinesSink:
    """Writes each message as one JSON line (for ``--dry-run``: inspect or replay the output)."""

    def __init__(self, stream: IO[bytes] | None = None) -> None:
        self._stream = stream if stream is not None else sys.stdout.buffer
        self._lock = threading.Lock()
        self._sent = 0
        self._bytes = 0

    def put(self, data: bytes | str, partition_key: str | int) -> None:
        """Write ``data`` and a newline; the partition key is implied by the message's raceId."""
        payload = data.encode() if isinstance(data, str) else data
        with self._lock:
            self._stream.write(payload + b"\n")
            self._sent += 1
            self._bytes += len(payload)

    def stats(self) -> ProducerStats:
        """Lines written so far (as ``sent``) and their bytes."""
        with self._lock:
            return ProducerStats(sent=self._sent, bytes=self._bytes, kinesis_records=self._sent)

    def take_failures(self) -> list[FailedRecord]:
        """Writing a line does not fail softly: always empty."""
        return []

    def flush(self) -> PutResult:
        """Flush the underlying stream."""
        with self._lock:
            self._stream.flush()
        return PutResult()


@dataclass(frozen=True, slots=True)
class RunnerStats:
    """Progress of a run, as handed to the progress callback."""

    race_second: int
    duration: int
    races: int
    messages_generated: int
    messages_total: int
    sent: int
    failed: int
    retried: int
    elapsed_seconds: float
    messages_per_second: float
    failures_by_code: Mapping[str, int] = field(default_factory=dict)
    finished: bool = False


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What a finished (or stopped) run did."""

    races: tuple[RaceSpec, ...]
    messages_generated: int
    sent: int
    failed: int
    retried: int
    failures_by_code: Mapping[str, int]
    duration_seconds: float
    seconds_played: int
    stopped_early: bool
    failed_records: tuple[FailedRecord, ...] = ()

    @property
    def race_ids(self) -> tuple[int, ...]:
        """The raceIds of the run, in class order."""
        return tuple(race.race_id for race in self.races)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view (without the failed payloads)."""
        return {
            "raceIds": list(self.race_ids),
            "races": [
                {"raceId": r.race_id, "classId": r.class_id, "racers": r.racers, "duration": r.duration}
                for r in self.races
            ],
            "messagesGenerated": self.messages_generated,
            "sent": self.sent,
            "failed": self.failed,
            "retried": self.retried,
            "failuresByCode": dict(self.failures_by_code),
            "durationSeconds": round(self.duration_seconds, 3),
            "secondsPlayed": self.seconds_played,
            "stoppedEarly": self.stopped_early,
        }


ProgressCallback = Callable[[RunnerStats], None]


class RaceRunner:
    """Plays races that start together, one race second per ``1 / speed`` wall seconds.

    Pacing uses a monotonic clock: second ``s`` is sent at ``start + (s - 1) / speed`` and the
    runner sleeps until then (no busy waiting). If sending falls behind, the next second goes out
    at once. With ``realtime=False`` there is no pacing at all (dry runs, tests).

    Args:
        races: the races to play; all must have the same duration.
        sink: where encoded messages go, keyed by raceId.
        speed: race seconds per wall second (10 plays a 300 s race in 30 s).
        realtime: pace by the clock; ``False`` plays as fast as the sink takes messages.
        progress: called with a :class:`RunnerStats` after every second and once at the end.
        clock, sleep: injectable time for tests; the default sleep returns early on :meth:`stop`.
    """

    def __init__(
        self,
        races: Sequence[RaceSpec],
        sink: MessageSink,
        *,
        speed: float = 1.0,
        realtime: bool = True,
        progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if not races:
            raise ValueError("no races to run")
        durations = {race.duration for race in races}
        if len(durations) != 1:
            raise ValueError(f"races started together must have one duration, got {sorted(durations)}")
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.races = tuple(races)
        self.duration = durations.pop()
        self._sink = sink
        self._speed = speed
        self._realtime = realtime
        self._progress = progress
        self._clock = clock
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop.wait
        self._failures: list[FailedRecord] = []

    def stop(self) -> None:
        """Ask a running :meth:`run` to stop after the current second (thread-safe)."""
        self._stop.set()

    def run(self) -> RunSummary:
        """Play every second, flush the sink, and summarise."""
        started = self._clock()
        generators = [(race.race_id, generate_race_messages(race)) for race in self.races]
        total = sum(race.message_count for race in self.races)
        generated = 0
        played = 0
        dumps = orjson.dumps
        for second in range(1, self.duration + 1):
            if self._stop.is_set():
                break
            if self._realtime:
                wait = started + (second - 1) / self._speed - self._clock()
                if wait > 0:
                    self._sleep(wait)
                if self._stop.is_set():
                    break
            for race_id, seconds in generators:
                key = str(race_id)
                messages = next(seconds)
                for message in messages:
                    self._sink.put(dumps(message), key)
                generated += len(messages)
            played = second
            self._failures += self._sink.take_failures()
            self._report(second, generated, total, started, finished=False)

        self._failures += self._sink.flush().failed
        self._failures += self._sink.take_failures()
        final = self._report(played, generated, total, started, finished=True)
        return RunSummary(
            races=self.races,
            messages_generated=generated,
            sent=final.sent,
            failed=final.failed,
            retried=final.retried,
            failures_by_code=final.failures_by_code,
            duration_seconds=final.elapsed_seconds,
            seconds_played=played,
            stopped_early=played < self.duration,
            failed_records=tuple(self._failures),
        )

    def _report(
        self, second: int, generated: int, total: int, started: float, *, finished: bool
    ) -> RunnerStats:
        stats = self._sink.stats()
        elapsed = max(self._clock() - started, 0.0)
        snapshot = RunnerStats(
            race_second=second,
            duration=self.duration,
            races=len(self.races),
            messages_generated=generated,
            messages_total=total,
            sent=stats.sent,
            failed=stats.failed,
            retried=stats.retried,
            elapsed_seconds=elapsed,
            messages_per_second=stats.sent / elapsed if elapsed > 0 else 0.0,
            failures_by_code=dict(Counter(f.error_code for f in self._failures)),
            finished=finished,
        )
        if self._progress is not None:
            self._progress(snapshot)
        return snapshot
