"""Metric observations summed per metric and second, until they are published.

Every observation is one sample (e.g. the records of one PutRecords call). Samples of the same
metric in the same second are kept as one statistic set (count, sum, min, max), which is what
PutMetricData's ``StatisticValues`` carries: cheap to add on the hot path, and CloudWatch's Sum,
Average, Minimum, Maximum and SampleCount all stay exact.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class MetricId:
    """What identifies a metric in CloudWatch (plus the unit its samples carry)."""

    namespace: str
    name: str
    dimensions: Dimensions
    unit: str = "None"


@dataclass(slots=True)
class StatisticSet:
    """Samples of one metric in one second."""

    count: float
    total: float
    minimum: float
    maximum: float

    def add(self, value: float, count: float = 1.0) -> None:
        """One more sample (``count`` of them with the same value)."""
        self.count += count
        self.total += value * count
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)


@dataclass(frozen=True, slots=True)
class Datum:
    """A statistic set ready to publish: the metric, its second (epoch) and the statistics."""

    metric: MetricId
    second: int
    stats: StatisticSet


class MetricAggregator:
    """Thread-safe accumulation of samples, drained by the publisher."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._cells: dict[tuple[MetricId, int], StatisticSet] = {}

    def add(self, metric: MetricId, value: float, timestamp: float | None = None, count: float = 1.0) -> None:
        """Record one sample of ``metric`` (at ``timestamp`` epoch seconds, default now)."""
        second = int(self._clock() if timestamp is None else timestamp)
        key = (metric, second)
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                self._cells[key] = StatisticSet(count, value * count, value, value)
            else:
                cell.add(value, count)

    def add_all(self, samples: Iterable[tuple[MetricId, float]], timestamp: float | None = None) -> None:
        """Record several samples taken at the same moment (one lock round)."""
        second = int(self._clock() if timestamp is None else timestamp)
        with self._lock:
            for metric, value in samples:
                key = (metric, second)
                cell = self._cells.get(key)
                if cell is None:
                    self._cells[key] = StatisticSet(1.0, value, value, value)
                else:
                    cell.add(value)

    def drain(self) -> list[Datum]:
        """Everything recorded so far, oldest first; the aggregator starts empty again."""
        with self._lock:
            cells, self._cells = self._cells, {}
        return sorted(
            (Datum(metric, second, stats) for (metric, second), stats in cells.items()),
            key=lambda d: d.second,
        )

    def __len__(self) -> int:
        with self._lock:
            return len(self._cells)
