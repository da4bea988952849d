"""Accumulating a window's messages into per-race, per-racer deltas.

A window (a tumbling window of a stream consumer, or one batch when windows are off) is folded in
batch by batch, and may be handed over between batches as a snapshot (Lambda's window state, a
checkpoint): so the accumulator is append-only. Each batch's messages collect in an open *chunk* of
columns per race; a snapshot seals it, and sealed chunks are kept as they are (in whatever stored
form the snapshot's codec gave them, see :class:`SealedChunk`). Only a look at the window's deltas
(:attr:`WindowAccumulator.races`, at the window's end) replays the chunks into per-racer deltas, so
a window costs work in proportion to its messages, not to messages times batches, and creates few
long-lived objects on the way.

How a snapshot is encoded is not the domain's business: the Lambda aggregator's codec is
``consumers.aggregator.window_state``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from leaderboard.domain.messages import RacerMessage, RacerReading, ReadingColumns, columns_of, outputs_e4
from leaderboard.domain.race import RaceDelta
from leaderboard.domain.scoring import RacerDelta


class CorruptWindowError(ValueError):
    """A window's sealed chunks cannot be replayed: they were damaged while stored."""


@dataclass(slots=True)
class ChunkColumns:
    """A sealed chunk: one batch's messages of one race, as columns in arrival order.

    ``finals`` lists the positions of ``final`` messages and ``names`` the ``[position, name]`` of
    each message whose racer's name differs from the race's name before it (so a racer's first
    message in the window always carries its name).
    """

    racer_ids: list[int]
    seconds: list[int]
    outputs: list[int]
    finals: list[int]
    names: list[list[Any]]

    @property
    def count(self) -> int:
        """Messages in the chunk."""
        return len(self.racer_ids)

    def columns(self) -> ChunkColumns:
        """Itself: it is already decoded."""
        return self


class SealedChunk(Protocol):
    """A sealed chunk in any form: decoded only when the window is replayed.

    A snapshot codec restores chunks in their stored form and passes them through untouched until
    the window's end, so a chunk is decoded once, not at every batch.
    """

    @property
    def count(self) -> int:
        """Messages in the chunk."""
        ...

    def columns(self) -> ChunkColumns:
        """The chunk's columns (raises :class:`CorruptWindowError` when damaged)."""
        ...


@dataclass(slots=True)
class _OpenChunk:
    """One invocation's messages of one race, as columns, until sealed into the state."""

    racer_ids: list[int] = field(default_factory=list)
    seconds: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    finals: list[int] = field(default_factory=list)
    names: list[list[Any]] = field(default_factory=list)

    def seal(self) -> ChunkColumns:
        """The chunk as it is kept from now on."""
        return ChunkColumns(self.racer_ids, self.seconds, self.outputs, self.finals, self.names)


@dataclass(slots=True)
class PendingRace:
    """A race's messages not replayed yet: sealed chunks from a snapshot plus this batch's."""

    class_id: int
    first_device_ts: int = 0
    last_device_ts: int = 0
    messages: int = 0
    names: dict[int, str] = field(default_factory=dict)
    chunks: list[SealedChunk] = field(default_factory=list)
    open: _OpenChunk | None = None

    def sealed_chunks(self) -> list[SealedChunk]:
        """Every chunk, this batch's sealed too (it then stays sealed)."""
        if self.open is not None and self.open.racer_ids:
            self.chunks = [*self.chunks, self.open.seal()]
        self.open = None
        return self.chunks


class WindowAccumulator:
    """Per-race, per-racer outputs of one window (or one batch when windows are off)."""

    def __init__(
        self, races: dict[int, RaceDelta] | None = None, pending: dict[int, PendingRace] | None = None
    ) -> None:
        """Start empty, or from a snapshot: replayed race deltas and races still in chunks."""
        self._races: dict[int, RaceDelta] = races if races is not None else {}
        self._pending: dict[int, PendingRace] = pending if pending is not None else {}

    @property
    def races(self) -> dict[int, RaceDelta]:
        """The window's deltas per race (replays what was accumulated since the last look)."""
        if self._pending:
            for race_id, pending in self._pending.items():
                self._races[race_id] = _replay(race_id, pending, self._races.get(race_id))
            self._pending = {}
        return self._races

    def add(self, message: RacerMessage) -> None:
        """Fold one valid message in."""
        self.add_readings([message.to_reading()])

    def add_all(self, messages: Iterable[RacerMessage]) -> None:
        """Fold many messages in."""
        self.add_readings([message.to_reading() for message in messages])

    def add_readings(self, readings: Iterable[RacerReading]) -> int:
        """Fold validated readings in; returns how many. Same result as :meth:`add` of each."""
        return self.add_columns(columns_of(readings if isinstance(readings, list) else list(readings)))

    def add_columns(self, columns: ReadingColumns) -> int:
        """Fold validated messages given as columns in; returns how many.

        This is the aggregator's hot path (every message of every batch): it appends columns, and
        the per-racer work happens once per window in :attr:`races`.
        """
        race_ids = columns.race_ids
        if not race_ids:
            return 0
        if race_ids.count(race_ids[0]) == len(race_ids):
            self._add_race(race_ids[0], columns)  # the usual case: the partition key is the race
        else:
            by_race: dict[int, list[tuple[Any, ...]]] = {}
            for row in zip(*columns, strict=True):
                by_race.setdefault(row[0], []).append(row)
            for race_id, rows in by_race.items():
                self._add_race(race_id, ReadingColumns(*zip(*rows, strict=True)))
        return len(race_ids)

    def _add_race(self, race_id: int, columns: ReadingColumns) -> None:
        pending = self._pending.get(race_id)
        if pending is None:
            known = self._races.get(race_id)
            class_id = known.class_id if known is not None else columns.class_ids[0]
            pending = self._pending[race_id] = PendingRace(class_id=class_id)
        chunk = pending.open
        if chunk is None:
            chunk = pending.open = _OpenChunk()
        start = len(chunk.racer_ids)
        _, racer_ids, seconds, cadences, resistances, names, timestamps, events, _ = columns
        chunk.racer_ids += racer_ids
        chunk.seconds += seconds
        chunk.outputs += outputs_e4(cadences, resistances)
        if "final" in events:
            chunk.finals += [start + i for i, event in enumerate(events) if event == "final"]
        latest = dict(zip(racer_ids, names, strict=True))
        # Usually every racer appears once per batch under the name it had: one C-level check.
        if len(latest) != len(racer_ids) or not latest.items() <= pending.names.items():
            current = pending.names
            for position, (racer_id, name) in enumerate(zip(racer_ids, names, strict=True), start):
                if current.get(racer_id) != name:
                    current[racer_id] = name
                    chunk.names.append([position, name])
        first, last = min(timestamps), max(timestamps)
        if not pending.messages or first < pending.first_device_ts:
            pending.first_device_ts = first
        pending.last_device_ts = max(pending.last_device_ts, last)
        pending.messages += len(racer_ids)

    def merge(self, other: WindowAccumulator) -> None:
        """Fold another accumulator in (union; idempotent)."""
        races = self.races
        for race_id, delta in other.races.items():
            mine = races.get(race_id)
            races[race_id] = delta if mine is None else mine.join(delta)

    @property
    def is_empty(self) -> bool:
        """True when nothing has been accumulated."""
        return not self._races and not self._pending

    @property
    def messages(self) -> int:
        """Messages folded in (duplicates included)."""
        replayed = sum(r.messages for r in self._races.values())
        return replayed + sum(p.messages for p in self._pending.values())

    def snapshot(self) -> tuple[dict[int, RaceDelta], dict[int, PendingRace]]:
        """The replayed race deltas and the races still in chunks (sealed), for a snapshot codec.

        Both are the accumulator's own: a codec reads them and must not change them. Every chunk is
        sealed first, so the messages of the batch so far are in the snapshot.
        """
        for pending in self._pending.values():
            pending.sealed_chunks()
        return self._races, self._pending


def _replay(race_id: int, pending: PendingRace, base: RaceDelta | None) -> RaceDelta:
    """Fold a race's chunks, in arrival order, into its delta: the same delta as adding each message.

    Per message only the outputs are folded; the latest second, name and final second are settled
    per racer afterwards, which is what makes a window's end cheap.
    """
    race = base if base is not None else RaceDelta(race_id=race_id, class_id=pending.class_id)
    fresh: defaultdict[int, dict[int, int]] = defaultdict(dict)  # this window's outputs per racer
    renames: dict[int, list[tuple[int, str]]] = {}  # (position, name) per racer, in order
    finals: list[tuple[int, int, int]] = []  # (racer, second, position)
    rows: list[tuple[list[int], list[int], int]] = []  # (racer ids, seconds, first position)
    outputs_by_chunk: list[list[int]] = []
    offset = 0
    try:
        for chunk in pending.sealed_chunks():
            columns = chunk.columns()
            racer_ids, seconds, outputs = columns.racer_ids, columns.seconds, columns.outputs
            final_positions, changes = columns.finals, columns.names
            for racer_id, second, output in zip(racer_ids, seconds, outputs, strict=True):
                fresh[racer_id][second] = output
            for position, name in changes:
                renames.setdefault(racer_ids[position], []).append((offset + position, name))
            finals += [(racer_ids[p], seconds[p], offset + p) for p in final_positions]
            rows.append((racer_ids, seconds, offset))
            outputs_by_chunk.append(outputs)
            offset += len(racer_ids)
        if sum(map(len, fresh.values())) != offset:
            # A (racer, second) came more than once: the plain assignment above kept the last
            # output, but a delta keeps the largest (order-free). Rare, so settled in a second pass.
            for (racer_ids, seconds, _offset), outputs in zip(rows, outputs_by_chunk, strict=True):
                for racer_id, second, output in zip(racer_ids, seconds, outputs, strict=True):
                    outs = fresh[racer_id]
                    outs[second] = max(outs[second], output)
        latest = _latest_positions(rows, {r for r, changes in renames.items() if len(changes) > 1})
        final_seconds: dict[int, int] = {}
        for racer_id, second, _position in finals:
            final_seconds[racer_id] = max(second, final_seconds.get(racer_id, -1))
        racers = race.racers
        for racer_id, outs in fresh.items():
            named = renames[racer_id]
            last_second = max(outs)
            # The name travels with the latest second (the later message on a tie).
            name = named[0][1] if len(named) == 1 else _name_at(named, latest[racer_id])
            delta = RacerDelta(name, outs, final_seconds.get(racer_id), last_second)
            known = racers.get(racer_id)
            racers[racer_id] = delta if known is None else _fold(known, delta)
    except CorruptWindowError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise CorruptWindowError(f"corrupt window chunk: {exc}") from exc
    if pending.messages:
        if not race.messages or pending.first_device_ts < race.first_device_ts:
            race.first_device_ts = pending.first_device_ts
        race.last_device_ts = max(race.last_device_ts, pending.last_device_ts)
        race.messages += pending.messages
    return race


def _latest_positions(rows: list[tuple[list[int], list[int], int]], racers: set[int]) -> dict[int, int]:
    """For each of ``racers``, the position of its message with the latest second (the later on a tie)."""
    best: dict[int, tuple[int, int]] = {}
    if racers:
        for racer_ids, seconds, offset in rows:
            for position, (racer_id, second) in enumerate(zip(racer_ids, seconds, strict=True), offset):
                if racer_id in racers:
                    top = best.get(racer_id)
                    if top is None or second >= top[0]:
                        best[racer_id] = (second, position)
    return {racer_id: position for racer_id, (_second, position) in best.items()}


def _name_at(changes: list[tuple[int, str]], position: int) -> str:
    """The racer's name at ``position``: the last change at or before it."""
    name = changes[0][1]
    for at, changed in changes:
        if at > position:
            break
        name = changed
    return name


def _fold(known: RacerDelta, later: RacerDelta) -> RacerDelta:
    """``known`` then ``later``'s messages added in order (RacerDelta.add semantics, not join's)."""
    outputs = known.outputs
    for second, output in later.outputs.items():
        previous = outputs.get(second)
        if previous is None or output > previous:
            outputs[second] = output
    if later.last_second >= known.last_second:
        known.last_second = later.last_second
        known.name = later.name
    if later.final_second is not None and (
        known.final_second is None or later.final_second > known.final_second
    ):
        known.final_second = later.final_second
    return known
