"""The recorded scenarios, their expected facts, and the comparison that scores each one.

Each file in ``recorded/`` holds the facts extracted from one LocalStack snapshot file (recorded
on AWS): its source path, and per scenario the date AWS last validated it, the expected facts and
our verdict: ``match`` (the test fails unless localcloud reproduces the facts), ``differs`` (a
known, accepted difference; the test fails if the difference goes away, so the table stays true)
or ``not-replayed`` (counted in M, never in N, with the reason).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECORDED = Path(__file__).parent / "recorded"

# Filled by compare() during the run; the conftest hook prints the summary from it.
OUTCOMES: dict[str, bool] = {}


@dataclass(frozen=True)
class Scenario:
    """One recorded scenario (or one recorded fact of a scenario)."""

    key: str
    source: str
    validated: str
    status: str
    expected: Any
    reason: str


def load() -> dict[str, Scenario]:
    """Every recorded scenario, keyed ``<file stem>::<scenario id>``."""
    scenarios: dict[str, Scenario] = {}
    for path in sorted(RECORDED.glob("*.json")):
        document = json.loads(path.read_text())
        for name, entry in document["scenarios"].items():
            key = f"{path.stem}::{name}"
            scenarios[key] = Scenario(
                key=key,
                source=document["source"],
                validated=entry["validated"],
                status=entry["status"],
                expected=entry.get("expected"),
                reason=entry.get("reason", ""),
            )
    return scenarios


def applicable() -> list[Scenario]:
    """The scenarios that count in M."""
    return [s for s in load().values() if s.status != "not-applicable"]


def compare(key: str, observed: Any) -> None:
    """Score ``observed`` (already normalised) against the recorded facts of ``key``.

    A ``match`` scenario must equal the recording; a ``differs`` one must still differ (so an
    improvement is noticed and the table updated).
    """
    scenario = load()[key]
    matched = observed == scenario.expected
    OUTCOMES[key] = matched
    if scenario.status == "match":
        assert matched, _diff(scenario.expected, observed)
    elif scenario.status == "differs":
        assert not matched, f"{key} now matches AWS: mark it 'match' in recorded/ and the README"
    else:
        raise AssertionError(f"{key} has status {scenario.status!r} and should not be replayed")


def _diff(expected: Any, observed: Any) -> str:
    lines = ["localcloud differs from the recording (path: recorded != localcloud):"]
    lines.extend(f"  {path}: {want!r} != {got!r}" for path, want, got in differences(expected, observed))
    return "\n".join(lines)


def differences(expected: Any, observed: Any, path: str = "$") -> list[tuple[str, Any, Any]]:
    """Every leaf where ``observed`` departs from ``expected`` (missing keys shown as <absent>)."""
    if isinstance(expected, dict) and isinstance(observed, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(expected) | set(observed)):
            found.extend(
                differences(expected.get(key, "<absent>"), observed.get(key, "<absent>"), f"{path}.{key}")
            )
        return found
    if isinstance(expected, list) and isinstance(observed, list) and len(expected) == len(observed):
        return [
            d
            for i, (e, o) in enumerate(zip(expected, observed, strict=True))
            for d in differences(e, o, f"{path}[{i}]")
        ]
    if isinstance(expected, list) and isinstance(observed, list):
        return [(f"{path} (length)", len(expected), len(observed))]
    return [] if expected == observed else [(path, expected, observed)]


def summary_line() -> str | None:
    """``fidelity: N of M recorded scenarios match`` when fidelity tests ran, else None."""
    if not OUTCOMES:
        return None
    matched = sum(1 for ok in OUTCOMES.values() if ok)
    return f"fidelity: {matched} of {len(applicable())} recorded scenarios match"
