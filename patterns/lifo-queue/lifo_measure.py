"""What a load run did, measured from the legacy stand-in's ledger (every call it served)."""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LedgerEntry:
    """One legacy call: the task, when it was created, when the legacy system started on it."""

    task_id: str
    created: float
    started: float
    outcome: str
    caller: str

    @property
    def wait_s(self) -> float:
        """How long the task waited for the legacy system."""
        return self.started - self.created


def read_ledger(path: Path) -> list[LedgerEntry]:
    """Every call in the ledger, in the order they were served."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            entries.append(
                LedgerEntry(raw["taskId"], raw["created"], raw["started"], raw["outcome"], raw["caller"])
            )
    return sorted(entries, key=lambda e: e.started)


def newest_share_wait_p50(
    created: dict[str, float], entries: Iterable[LedgerEntry], share: float = 0.1
) -> float | None:
    """The median wait of the newest ``share`` of the tasks created (by creation time).

    Tasks that never reached the legacy system (shed) are left out; None if none of them did.
    """
    newest = sorted(created, key=created.__getitem__)[-max(1, int(len(created) * share)) :]
    served = {e.task_id: e for e in entries}
    waits = [served[t].wait_s for t in newest if t in served]
    return statistics.median(waits) if waits else None


def overtaken_share(created: dict[str, float], entries: list[LedgerEntry], slack_s: float = 1.0) -> float:
    """The share of calls for which a task created more than ``slack_s`` later was already waiting
    (created, not yet served): 0 for a perfect newest-first queue, near 1 for a FIFO under load."""
    served_at = {e.task_id: e.started for e in entries}
    by_created = sorted(created.items(), key=lambda item: item[1])
    overtaken = 0
    for entry in entries:
        for task_id, at in by_created:
            if at <= entry.created + slack_s:
                continue
            if at >= entry.started:
                break
            if served_at.get(task_id, float("inf")) > entry.started:
                overtaken += 1
                break
    return overtaken / len(entries) if entries else 0.0


def runs_overlap(entries: list[LedgerEntry]) -> bool:
    """Whether two processing runs (callers) ever served tasks at the same time."""
    spans: dict[str, tuple[float, float]] = {}
    for entry in entries:
        first, last = spans.get(entry.caller, (entry.started, entry.started))
        spans[entry.caller] = (min(first, entry.started), max(last, entry.started))
    ordered = sorted(spans.values())
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(ordered))
