"""An independent oracle: final standings computed straight from the messages that were sent.

Deliberately written without the domain code (plain dicts and the contract's formula), so a bug in
scoring or ranking cannot hide in both places.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def expected_standings(messages: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Per race: ``[{"rank","racerId","totalOutput"}]`` in contract order, each (racer, second) once."""
    seconds: dict[tuple[int, int], dict[int, float]] = {}
    for m in messages:
        per_racer = seconds.setdefault((m["raceId"], m["racerId"]), {})
        per_racer.setdefault(m["second"], (m["cadence"] + 35) * (m["resistance"] + 65) / 100)
    totals: dict[int, list[tuple[int, float]]] = {}
    for (race_id, racer_id), outputs in seconds.items():
        totals.setdefault(race_id, []).append((racer_id, round(sum(outputs.values()), 2)))
    result: dict[int, list[dict[str, Any]]] = {}
    for race_id, rows in totals.items():
        rows.sort(key=lambda r: (-r[1], r[0]))
        ranked = []
        for position, (racer_id, total) in enumerate(rows, start=1):
            rank = ranked[-1]["rank"] if ranked and ranked[-1]["totalOutput"] == total else position
            ranked.append({"rank": rank, "racerId": racer_id, "totalOutput": total})
        result[race_id] = ranked
    return result
