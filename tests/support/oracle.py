"""An independent oracle: final standings computed straight from the messages that were sent.

Deliberately written without the domain code (plain dicts, the contract's formula and the original
Alleycat sample's JavaScript rounding, step by step), so a bug in scoring or ranking cannot hide in
both places.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

_HALF = Fraction(1, 2)
_E4 = 10_000


def js_output_e4(cadence: float, resistance: float) -> int:
    """One second's output in ten-thousandths, as the original's ``Math.round(output + 'e4')`` has it.

    Each JavaScript step in turn: the formula in doubles; ``output + 'e4'`` is the double's shortest
    decimal string with an exponent appended (Python's ``repr`` prints the same digits, and outputs
    of in-range efforts are never printed in exponent form); ``Math.round`` converts that string to
    a double (``float`` parses correctly rounded, as JavaScript does) and returns the integer nearest
    to it, a half towards +infinity, i.e. floor(x + 1/2) computed exactly.
    """
    output = (cadence + 35) * (resistance + 65) / 100
    parsed = float(repr(output) + "e4")
    return math.floor(Fraction(parsed) + _HALF)


def expected_standings(messages: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Per race: ``[{"rank","racerId","totalOutput"}]`` in contract order, each (racer, second) once.

    ``totalOutput`` is a float with up to four decimals, the exact sum of the seconds' rounded
    outputs, which is what the API serves.
    """
    seconds: dict[tuple[int, int], dict[int, int]] = {}
    for m in messages:
        per_racer = seconds.setdefault((m["raceId"], m["racerId"]), {})
        per_racer.setdefault(m["second"], js_output_e4(m["cadence"], m["resistance"]))
    totals: dict[int, list[tuple[int, int]]] = {}
    for (race_id, racer_id), outputs in seconds.items():
        totals.setdefault(race_id, []).append((racer_id, sum(outputs.values())))
    result: dict[int, list[dict[str, Any]]] = {}
    for race_id, rows in totals.items():
        rows.sort(key=lambda r: (-r[1], r[0]))
        ranked: list[dict[str, Any]] = []
        previous: int | None = None
        for position, (racer_id, total) in enumerate(rows, start=1):
            rank = ranked[-1]["rank"] if ranked and previous == total else position
            previous = total
            ranked.append({"rank": rank, "racerId": racer_id, "totalOutput": float(Fraction(total, _E4))})
        result[race_id] = ranked
    return result
