"""Reading a CloudWatch dashboard body: time ranges and the queries of a metric widget.

A metric widget's ``metrics`` array holds one row per series: ``[namespace, name, dim, value, ...,
{rendering options}]``, or ``[{"expression": ..., "id": ...}]`` for metric math. ``"."`` repeats
the value at the same position of the row above, and a trailing ``"..."`` repeats the rest of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_PERIOD = 300  # CloudWatch's default when neither the metric nor the widget sets one
DEFAULT_STAT = "Average"

_DURATION = re.compile(
    r"^-?P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


class BodyError(ValueError):
    """The dashboard body (or a widget of it) is not in CloudWatch's format."""


@dataclass(frozen=True)
class SeriesQuery:
    """One row of a metric widget, ready for GetMetricData (or for metric math)."""

    id: str
    label: str
    options: dict[str, Any]
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    stat: str = DEFAULT_STAT
    period: int = DEFAULT_PERIOD
    expression: str | None = None

    @property
    def visible(self) -> bool:
        """Whether the widget draws it (hidden rows still feed expressions)."""
        return bool(self.options.get("visible", True))

    def metric_data_query(self) -> dict[str, Any]:
        """The GetMetricData ``MetricDataQueries`` entry."""
        if self.expression is not None:
            return {"Id": self.id, "Expression": self.expression, "Label": self.label, "ReturnData": True}
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.metric_name,
                    "Dimensions": [{"Name": n, "Value": v} for n, v in self.dimensions],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "Label": self.label,
            "ReturnData": True,
        }


@dataclass
class WidgetQueries:
    """The series of one metric widget."""

    series: list[SeriesQuery] = field(default_factory=list)
    period: int = DEFAULT_PERIOD


def parse_duration(text: str) -> timedelta:
    """An ISO-8601 duration as dashboards write relative times (``-PT3H``, ``-P1D``, ``-PT15M``)."""
    match = _DURATION.match(text.strip())
    if match is None or not any(match.groupdict().values()):
        raise BodyError(f"not an ISO-8601 duration: {text!r}")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


def time_range(start: str | None, end: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The absolute UTC range of a dashboard's ``start``/``end`` (relative durations or ISO times)."""
    now = now or datetime.now(UTC)

    def point(text: str | None, default: datetime) -> datetime:
        if not text:
            return default
        if text.lstrip("-").startswith("P"):
            return now - parse_duration(text)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise BodyError(f"not a duration or an ISO-8601 time: {text!r}") from exc
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    begin = point(start, now - timedelta(hours=3))
    finish = point(end, now)
    if finish <= begin:
        raise BodyError("the time range ends before it starts")
    return begin, finish


def expand_metric_rows(rows: list[Any]) -> list[tuple[list[Any], dict[str, Any]]]:
    """A widget's metric rows as (namespace, name, dim, value, ...) plus options; "." and "..." expanded."""
    expanded: list[tuple[list[Any], dict[str, Any]]] = []
    previous: list[Any] = []
    for row in rows:
        if not isinstance(row, list):
            raise BodyError(f"a metrics row is a list, not {row!r}")
        has_options = bool(row) and isinstance(row[-1], dict)
        options: dict[str, Any] = dict(row[-1]) if has_options else {}
        fields = list(row[:-1] if has_options else row)
        if fields and fields[0] == "...":
            # ["...", "v"]: the row above with its last values replaced (as the console writes it)
            tail = fields[1:]
            fields = previous[: len(previous) - len(tail)] + tail
        elif fields and fields[-1] == "...":
            fields = fields[:-1] + previous[len(fields) - 1 :]
        fields = [
            previous[i] if value == "." and i < len(previous) else value for i, value in enumerate(fields)
        ]
        if fields:
            previous = fields
        expanded.append((fields, options))
    return expanded


def widget_queries(properties: dict[str, Any], period_override: int | None = None) -> WidgetQueries:
    """The series a metric widget's ``properties`` ask for, each with its id, stat and period."""
    widget_period = int(period_override or properties.get("period") or DEFAULT_PERIOD)
    widget_stat = str(properties.get("stat") or DEFAULT_STAT)
    queries = WidgetQueries(period=widget_period)
    for index, (fields, options) in enumerate(expand_metric_rows(properties.get("metrics", []))):
        query_id = str(options.get("id") or f"m{index + 1}")
        if "expression" in options:
            queries.series.append(
                SeriesQuery(
                    id=query_id,
                    label=str(options.get("label") or options["expression"]),
                    options=options,
                    expression=str(options["expression"]),
                    period=widget_period,
                )
            )
            continue
        if len(fields) < 2 or len(fields) % 2:
            raise BodyError(f"metrics row {index + 1} is not [namespace, name, dimension, value, ...]")
        namespace, name, *dims = (str(value) for value in fields)
        stat = str(options.get("stat") or widget_stat)
        period = int(period_override or options.get("period") or widget_period)
        dimensions = tuple(zip(dims[::2], dims[1::2], strict=True))
        queries.series.append(
            SeriesQuery(
                id=query_id,
                label=str(options.get("label") or name),
                options=options,
                namespace=namespace,
                metric_name=name,
                dimensions=dimensions,
                stat=stat,
                period=period,
            )
        )
    return queries
