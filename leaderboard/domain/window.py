"""Accumulating a tumbling window's messages in the Lambda window state.

Lambda carries a window's state between invocations as JSON and limits it to 1 MB per shard, and the
aggregator decodes and re-encodes it at every invocation of the window. So the state is append-only:
each invocation seals the messages it accumulated into one *chunk* and passes the earlier chunks
through untouched. Only the window's last invocation replays the chunks into per-racer deltas
(:attr:`WindowAccumulator.races`), so a window costs work in proportion to its messages, not to
messages times invocations, and creates few long-lived objects on the way.

State (version 3)::

    {"v": 3, "races": {"<raceId>": {
        "c": classId, "t0": firstDeviceTimestamp, "t1": lastDeviceTimestamp, "m": messages,
        "r": {"<racerId>": [name, finalSecond or -1, [second, output, ...]]},   # optional, see below
        "n": [[racerId, ...], [name, ...]],  # each racer's name as of the newest chunk
        "k": [[count, rows, finals, names], ...]}}}                            # chunks, oldest first

A chunk's ``rows`` are its messages' columns in arrival order: ``[[racerId, ...], [second, ...],
[output in hundredths, ...]]``, or, once a race's window holds more than ``COMPRESS_ABOVE_ROWS``
messages (~15 bytes each as JSON), a string: base64 of the zlib-compressed little-endian columns,
``count`` racer ids (int64), then ``count`` seconds (int32), then ``count`` outputs (int32) — about
5 bytes a message, so a 10,000-racer race's 5-second window takes ~600 KB (half of it names) and
stays under the early-write budget.
``finals`` lists the positions of ``final`` messages and ``names`` the ``[position, name]`` of each
message whose racer's name differs from ``n`` before it (so a racer's first message in the window
always carries its name). ``r`` holds deltas already replayed (version 2's per-racer form) and is
only present for windows built from deltas or from a version 2 state, which is still read.
"""

from __future__ import annotations

import base64
import zlib
from array import array
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import orjson

from leaderboard.domain.messages import RacerMessage, RacerReading, ReadingColumns, columns_of
from leaderboard.domain.race import RaceDelta
from leaderboard.domain.scoring import RacerDelta

STATE_VERSION = 3
_READABLE_VERSIONS = (2, 3)
# Lambda rejects window state over 1 MB; past this budget the aggregator writes what it has early
# (merging is idempotent, so an early write is only a cost, never a double count).
DEFAULT_STATE_BUDGET_BYTES = 768 * 1024
# Small windows keep plain lists (no encoding work at all); large ones pay ~0.15 us a message to
# compress. Fast beats small: the columns compress ~3:1 even at level 1.
COMPRESS_ABOVE_ROWS = 8_000
_CHUNK_COMPRESSION_LEVEL = 1


class StateFormatError(ValueError):
    """The window state is not one this code wrote."""


@dataclass(slots=True)
class _OpenChunk:
    """One invocation's messages of one race, as columns, until sealed into the state."""

    racer_ids: list[int] = field(default_factory=list)
    seconds: list[int] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)
    finals: list[int] = field(default_factory=list)
    names: list[list[Any]] = field(default_factory=list)

    def seal(self, compress: bool) -> list[Any]:
        """The chunk as it travels in the state."""
        rows: Any = [self.racer_ids, self.seconds, self.outputs]
        if compress:
            columns = (
                array("q", self.racer_ids).tobytes()
                + array("i", self.seconds).tobytes()
                + array("i", self.outputs).tobytes()
            )
            rows = base64.b64encode(zlib.compress(columns, _CHUNK_COMPRESSION_LEVEL)).decode()
        return [len(self.racer_ids), rows, self.finals, self.names]


@dataclass(slots=True)
class _PendingRace:
    """A race's messages not replayed yet: sealed chunks from the state plus this invocation's."""

    class_id: int
    first_device_ts: int = 0
    last_device_ts: int = 0
    messages: int = 0
    names: dict[int, str] = field(default_factory=dict)
    chunks: list[list[Any]] = field(default_factory=list)
    open: _OpenChunk | None = None

    def sealed_chunks(self) -> list[list[Any]]:
        """Every chunk, this invocation's sealed too (it then stays sealed)."""
        if self.open is not None and self.open.racer_ids:
            self.chunks = [*self.chunks, self.open.seal(self.messages > COMPRESS_ABOVE_ROWS)]
        self.open = None
        return self.chunks


class WindowAccumulator:
    """Per-race, per-racer outputs of one window (or one batch when windows are off)."""

    def __init__(self, races: dict[int, RaceDelta] | None = None) -> None:
        """Start empty, or from already-decoded race deltas."""
        self._races: dict[int, RaceDelta] = races if races is not None else {}
        self._pending: dict[int, _PendingRace] = {}

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
            pending = self._pending[race_id] = _PendingRace(class_id=class_id)
        chunk = pending.open
        if chunk is None:
            chunk = pending.open = _OpenChunk()
        start = len(chunk.racer_ids)
        _, racer_ids, seconds, cadences, resistances, names, timestamps, events, _ = columns
        chunk.racer_ids += racer_ids
        chunk.seconds += seconds
        chunk.outputs += [round((c + 35) * (r + 65)) for c, r in zip(cadences, resistances, strict=True)]
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

    def to_state(self) -> dict[str, Any]:
        """The JSON-serialisable window state."""
        races: dict[str, Any] = {}
        flatten = chain.from_iterable
        for race_id in self._races.keys() | self._pending.keys():
            delta = self._races.get(race_id)
            pending = self._pending.get(race_id)
            race: dict[str, Any]
            if pending is None:
                assert delta is not None
                race = {"c": delta.class_id, "t0": delta.first_device_ts, "t1": delta.last_device_ts}
                race |= {"m": delta.messages, "n": [[], []], "k": []}
            else:
                t0 = pending.first_device_ts
                if delta is not None and delta.messages:
                    t0 = min(t0, delta.first_device_ts) if pending.messages else delta.first_device_ts
                race = {
                    "c": pending.class_id,
                    "t0": t0,
                    "t1": max(pending.last_device_ts, delta.last_device_ts if delta else 0),
                    "m": pending.messages + (delta.messages if delta else 0),
                    "n": [list(pending.names), list(pending.names.values())],
                    "k": pending.sealed_chunks(),
                }
            if delta is not None and delta.racers:
                race["r"] = {
                    str(racer_id): [
                        racer.name,
                        -1 if racer.final_second is None else racer.final_second,
                        list(flatten(racer.outputs.items())),
                    ]
                    for racer_id, racer in delta.racers.items()
                }
            races[str(race_id)] = race
        return {"v": STATE_VERSION, "races": races}

    def state_size(self) -> int:
        """Bytes the state takes as JSON (what counts against Lambda's 1 MB limit)."""
        return len(orjson.dumps(self.to_state()))

    @classmethod
    def from_state(cls, state: Mapping[str, Any] | None) -> WindowAccumulator:
        """Rebuild from a state this class wrote; ``None`` or ``{}`` is an empty window."""
        if not state:
            return cls()
        version = state.get("v")
        if version not in _READABLE_VERSIONS or not isinstance(state.get("races"), dict):
            raise StateFormatError(f"unsupported window state (v={version!r})")
        window = cls()
        try:
            for race_key, race in state["races"].items():
                race_id = int(race_key)
                class_id = int(race["c"])
                messages = int(race["m"])
                chunks = race.get("k", []) if version == 3 else []
                if not isinstance(chunks, list):
                    raise TypeError("chunks must be a list")
                chunked = sum(int(chunk[0]) for chunk in chunks)
                racers = _decode_racers(race.get("r", {}) if version == 3 else race["r"])
                if racers or not chunks:
                    window._races[race_id] = RaceDelta(
                        race_id=race_id,
                        class_id=class_id,
                        racers=racers,
                        first_device_ts=int(race["t0"]),
                        last_device_ts=int(race["t1"]),
                        messages=messages - chunked,
                    )
                if chunks:
                    window._pending[race_id] = _PendingRace(
                        class_id=class_id,
                        first_device_ts=int(race["t0"]),
                        last_device_ts=int(race["t1"]),
                        messages=chunked,
                        names=dict(zip(*race["n"], strict=True)),
                        chunks=chunks,
                    )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateFormatError(f"corrupt window state: {exc}") from exc
        return window


def _decode_racers(encoded: Mapping[str, Any]) -> dict[int, RacerDelta]:
    """Version 2's per-racer form: ``{"<racerId>": [name, finalSecond or -1, [second, output, ...]]}``."""
    racers: dict[int, RacerDelta] = {}
    for racer_key, (name, final_second, flat) in encoded.items():
        if len(flat) & 1:
            raise ValueError(f"odd outputs list for racer {racer_key}")
        seconds = flat[::2]
        racers[int(racer_key)] = RacerDelta(
            name,
            dict(zip(seconds, flat[1::2], strict=False)),
            None if final_second < 0 else final_second,
            max(seconds) if seconds else -1,
        )
    return racers


def _decode_chunk(chunk: list[Any]) -> tuple[list[int], list[int], list[int], list[int], list[list[Any]]]:
    """A sealed chunk's columns, finals and name changes (raises ValueError when damaged)."""
    count, rows, finals, names = chunk
    if isinstance(rows, list):
        racer_list, second_list, output_list = rows
        if not len(racer_list) == len(second_list) == len(output_list) == count:
            raise ValueError(f"chunk of {count} rows has columns of other lengths")
        return racer_list, second_list, output_list, finals, names
    try:
        columns = zlib.decompress(base64.b64decode(rows, validate=True))
    except (zlib.error, ValueError) as exc:
        raise ValueError(f"damaged chunk: {exc}") from exc
    if len(columns) != count * 16:
        raise ValueError(f"chunk of {count} rows holds {len(columns)} bytes")
    racer_ids, seconds, outputs = array("q"), array("i"), array("i")
    racer_ids.frombytes(columns[: count * 8])
    seconds.frombytes(columns[count * 8 : count * 12])
    outputs.frombytes(columns[count * 12 :])
    return racer_ids.tolist(), seconds.tolist(), outputs.tolist(), finals, names


def _replay(race_id: int, pending: _PendingRace, base: RaceDelta | None) -> RaceDelta:
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
            racer_ids, seconds, outputs, final_positions, changes = _decode_chunk(chunk)
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
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StateFormatError(f"corrupt window state: {exc}") from exc
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
