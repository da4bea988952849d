"""The tumbling window's state as Lambda carries it between invocations: the accumulator's codec.

Lambda passes a window's state from one invocation of the window to the next as JSON and limits it
to 1 MB per shard; the aggregator decodes and re-encodes it at every invocation. The accumulator
(:class:`~leaderboard.domain.window.WindowAccumulator`) is append-only for this reason: each
invocation seals the messages it accumulated into one *chunk*, and earlier chunks pass through this
codec untouched (:class:`_StoredChunk` keeps their encoded form) until the window's last
invocation replays them.

State (version 4)::

    {"v": 4, "races": {"<raceId>": {
        "c": classId, "t0": firstDeviceTimestamp, "t1": lastDeviceTimestamp, "m": messages,
        "r": {"<racerId>": [name, finalSecond or -1, [second, output, ...]]},   # optional, see below
        "n": [[racerId, ...], [name, ...]],  # each racer's name as of the newest chunk
        "k": [[count, rows, finals, names], ...]}}}                            # chunks, oldest first

A chunk's ``rows`` are its messages' columns in arrival order: ``[[racerId, ...], [second, ...],
[output in ten-thousandths, ...]]``, or, once a race's window holds more than ``COMPRESS_ABOVE_ROWS``
messages (~15 bytes each as JSON), a string: base64 of the zlib-compressed little-endian columns,
``count`` racer ids (int64), then ``count`` seconds (int32), then ``count`` outputs (int32) — about
5 bytes a message, so a 10,000-racer race's 5-second window takes ~600 KB (half of it names) and
stays under the early-write budget.
``finals`` lists the positions of ``final`` messages and ``names`` the ``[position, name]`` of each
message whose racer's name differs from ``n`` before it (so a racer's first message in the window
always carries its name). ``r`` holds deltas already replayed (version 2's per-racer form) and is
only present for windows built from deltas or from a version 2 state, which is still read.

Versions 2 and 3 held outputs in hundredths; a window that was open across the deploy that moved
scores to ten-thousandths is read with its outputs scaled by 100 (exact) and written back as
version 4.
"""

from __future__ import annotations

import base64
import zlib
from array import array
from collections.abc import Mapping
from itertools import chain
from typing import Any

import orjson

from leaderboard.domain.race import RaceDelta
from leaderboard.domain.scoring import RacerDelta
from leaderboard.domain.window import (
    ChunkColumns,
    CorruptWindowError,
    PendingRace,
    SealedChunk,
    WindowAccumulator,
)

STATE_VERSION = 4
_READABLE_VERSIONS = (2, 3, 4)
# States before version 4 counted outputs in hundredths.
_HUNDREDTHS_VERSIONS = (2, 3)
_HUNDREDTHS_TO_E4 = 100
# Small windows keep plain lists (no encoding work at all); large ones pay ~0.15 us a message to
# compress. Fast beats small: the columns compress ~3:1 even at level 1.
COMPRESS_ABOVE_ROWS = 8_000
_CHUNK_COMPRESSION_LEVEL = 1


class StateFormatError(CorruptWindowError):
    """The window state is not one this code wrote."""


class _StoredChunk:
    """A chunk as it came in the state: passed through as it is, decoded only when replayed."""

    __slots__ = ("encoded",)

    def __init__(self, encoded: list[Any]) -> None:
        self.encoded = encoded

    @property
    def count(self) -> int:
        """Messages in the chunk."""
        return int(self.encoded[0])

    def columns(self) -> ChunkColumns:
        """The chunk's columns (raises :class:`StateFormatError` when damaged)."""
        try:
            return _decode_chunk(self.encoded)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StateFormatError(f"corrupt window state: {exc}") from exc


def to_state(window: WindowAccumulator) -> dict[str, Any]:
    """The window as JSON-serialisable Lambda window state."""
    replayed, pending_races = window.snapshot()
    races: dict[str, Any] = {}
    flatten = chain.from_iterable
    for race_id in replayed.keys() | pending_races.keys():
        delta = replayed.get(race_id)
        pending = pending_races.get(race_id)
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
                "k": _encode_chunks(pending),
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


def state_size(state: Mapping[str, Any]) -> int:
    """Bytes the state takes as JSON (what counts against Lambda's 1 MB limit)."""
    return len(orjson.dumps(state))


def from_state(state: Mapping[str, Any] | None) -> WindowAccumulator:
    """Rebuild a window from a state :func:`to_state` wrote; ``None`` or ``{}`` is an empty window."""
    if not state:
        return WindowAccumulator()
    version = state.get("v")
    if version not in _READABLE_VERSIONS or not isinstance(state.get("races"), dict):
        raise StateFormatError(f"unsupported window state (v={version!r})")
    replayed: dict[int, RaceDelta] = {}
    pending: dict[int, PendingRace] = {}
    try:
        for race_key, race in state["races"].items():
            race_id = int(race_key)
            class_id = int(race["c"])
            messages = int(race["m"])
            chunks = race.get("k", []) if version != 2 else []
            if not isinstance(chunks, list):
                raise TypeError("chunks must be a list")
            stored: list[Any] = [_StoredChunk(chunk) for chunk in chunks]
            chunked = sum(chunk.count for chunk in stored)
            racers = _decode_racers(race.get("r", {}) if version != 2 else race["r"])
            if version in _HUNDREDTHS_VERSIONS:
                stored, racers = _rescaled(stored), _rescaled_racers(racers)
            if racers or not chunks:
                replayed[race_id] = RaceDelta(
                    race_id=race_id,
                    class_id=class_id,
                    racers=racers,
                    first_device_ts=int(race["t0"]),
                    last_device_ts=int(race["t1"]),
                    messages=messages - chunked,
                )
            if chunks:
                sealed: list[SealedChunk] = list(stored)
                pending[race_id] = PendingRace(
                    class_id=class_id,
                    first_device_ts=int(race["t0"]),
                    last_device_ts=int(race["t1"]),
                    messages=chunked,
                    names=dict(zip(*race["n"], strict=True)),
                    chunks=sealed,
                )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise StateFormatError(f"corrupt window state: {exc}") from exc
    return WindowAccumulator(replayed, pending)


def _rescaled(stored: list[_StoredChunk]) -> list[Any]:
    """Chunks of a state in hundredths, decoded now with outputs in ten-thousandths.

    They cannot pass through untouched: re-encoded as they are, they would be read back as
    ten-thousandths. This happens once per window open across the deploy, so its cost is moot.
    """
    rescaled: list[Any] = []
    for chunk in stored:
        columns = chunk.columns()
        rescaled.append(
            ChunkColumns(
                columns.racer_ids,
                columns.seconds,
                [output * _HUNDREDTHS_TO_E4 for output in columns.outputs],
                columns.finals,
                columns.names,
            )
        )
    return rescaled


def _rescaled_racers(racers: dict[int, RacerDelta]) -> dict[int, RacerDelta]:
    """Replayed deltas of a state in hundredths, with outputs in ten-thousandths."""
    return {
        racer_id: RacerDelta(
            racer.name,
            {second: output * _HUNDREDTHS_TO_E4 for second, output in racer.outputs.items()},
            racer.final_second,
            racer.last_second,
        )
        for racer_id, racer in racers.items()
    }


def _encode_chunks(pending: PendingRace) -> list[list[Any]]:
    """A race's chunks in their state form: stored ones as they came, this invocation's encoded."""
    compress = pending.messages > COMPRESS_ABOVE_ROWS
    return [
        chunk.encoded if isinstance(chunk, _StoredChunk) else _encode_chunk(chunk.columns(), compress)
        for chunk in pending.chunks
    ]


def _encode_chunk(columns: ChunkColumns, compress: bool) -> list[Any]:
    """One chunk as it travels in the state: ``[count, rows, finals, names]``."""
    rows: Any = [columns.racer_ids, columns.seconds, columns.outputs]
    if compress:
        packed = (
            array("q", columns.racer_ids).tobytes()
            + array("i", columns.seconds).tobytes()
            + array("i", columns.outputs).tobytes()
        )
        rows = base64.b64encode(zlib.compress(packed, _CHUNK_COMPRESSION_LEVEL)).decode()
    return [columns.count, rows, columns.finals, columns.names]


def _decode_chunk(chunk: list[Any]) -> ChunkColumns:
    """A sealed chunk's columns, finals and name changes (raises ValueError when damaged)."""
    count, rows, finals, names = chunk
    if isinstance(rows, list):
        racer_list, second_list, output_list = rows
        if not len(racer_list) == len(second_list) == len(output_list) == count:
            raise ValueError(f"chunk of {count} rows has columns of other lengths")
        return ChunkColumns(racer_list, second_list, output_list, finals, names)
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
    return ChunkColumns(racer_ids.tolist(), seconds.tolist(), outputs.tolist(), finals, names)


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
