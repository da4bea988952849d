"""AWS/Lambda metrics (dimension ``FunctionName``) from localcloud's runtime and mapping engine,
and embedded-metric-format lines from the functions' logs.

The runtime reports every invocation to :class:`FunctionMetrics` (an invocation observer):
Invocations, Errors, Throttles, Duration and ConcurrentExecutions (the in-flight count when an
invocation starts, plus a sample per second while any is running; read its Maximum). IteratorAge
is sampled once per second from the mapping engine: the oldest shard position of any stream
mapping of the function.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from localcloud.invocation import InvocationResult
from localcloud.metrics.aggregate import MetricAggregator, MetricId
from localcloud.metrics.emf import parse_emf

NAMESPACE = "AWS/Lambda"


def _id(name: str, unit: str, function: str) -> MetricId:
    return MetricId(NAMESPACE, name, (("FunctionName", function),), unit)


def function_name(function: str) -> str:
    """A function's name from its name or (qualified) ARN."""
    if function.startswith("arn:"):
        return function.split(":")[6]
    return function


class FunctionMetrics:
    """An invocation observer for :class:`localcloud.runtime.LambdaRuntime`; see the module doc."""

    def __init__(self, sink: MetricAggregator) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self.emf_samples = 0

    # -- the runtime's observer API -------------------------------------------------------------
    def invocation_started(self, function_name: str) -> None:
        """An invocation is about to run."""
        with self._lock:
            running = self._in_flight.get(function_name, 0) + 1
            self._in_flight[function_name] = running
        self._sink.add(_id("ConcurrentExecutions", "Count", function_name), float(running))

    def invocation_throttled(self, function_name: str) -> None:
        """The function was at its concurrency limit: the invocation did not run."""
        self._sink.add(_id("Throttles", "Count", function_name), 1.0)

    def invocation_finished(self, function_name: str, result: InvocationResult | None) -> None:
        """The invocation ended (``result`` is None when it never ran)."""
        with self._lock:
            self._in_flight[function_name] = max(0, self._in_flight.get(function_name, 0) - 1)
        if result is None:
            return
        self._sink.add_all(
            [
                (_id("Invocations", "Count", function_name), 1.0),
                (_id("Errors", "Count", function_name), 0.0 if result.ok else 1.0),
                (_id("Duration", "Milliseconds", function_name), float(result.duration_ms)),
            ]
        )

    def log_lines(self, function_name: str, lines: list[str]) -> None:
        """Lines a function wrote: embedded-metric-format lines become metrics."""
        for line in lines:
            for sample in parse_emf(line):
                self._sink.add(sample.metric, sample.value, timestamp=sample.timestamp)
                self.emf_samples += 1

    # -- gauges, sampled by the publisher --------------------------------------------------------
    def sample_concurrency(self) -> None:
        """Record the in-flight count of every function running something now."""
        with self._lock:
            running = [(name, count) for name, count in self._in_flight.items() if count > 0]
        self._sink.add_all([(_id("ConcurrentExecutions", "Count", name), float(n)) for name, n in running])


def sample_iterator_age(engine_stats: Callable[[], list[Any]], sink: MetricAggregator) -> None:
    """Record each stream-mapped function's IteratorAge: the largest age over its shards."""
    ages: dict[str, float] = {}
    for shard in engine_stats():
        name = function_name(str(shard.function_arn))
        ages[name] = max(ages.get(name, 0.0), float(shard.iterator_age_ms))
    sink.add_all([(_id("IteratorAge", "Milliseconds", name), age) for name, age in ages.items()])
