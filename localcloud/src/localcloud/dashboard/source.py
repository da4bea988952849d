"""Dashboards and their data from CloudWatch: ListDashboards, GetDashboard and GetMetricData.

Works with any CloudWatch client: localcloud's (``endpoint_url``) or AWS's (a boto3 session), so
the page shows the same thing against both.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from localcloud.dashboard.body import BodyError, SeriesQuery, time_range, widget_queries
from localcloud.dashboard.metric_math import Series, UnsupportedExpressionError, evaluate, referenced_ids

# region (None: the default one) -> a boto3 CloudWatch client
ClientFactory = Callable[[str | None], Any]


class DashboardNotFoundError(LookupError):
    """No dashboard of that name (or not one of those this server shows)."""


class MetricSource:
    """Reads dashboards and the series of their widgets from CloudWatch."""

    def __init__(
        self,
        clients: ClientFactory,
        *,
        names: Sequence[str] | None = None,
        prefix: str = "",
        cache_seconds: float = 3.0,
    ) -> None:
        """Show the dashboards ``names`` (default: every dashboard whose name starts with ``prefix``).

        Answers are kept ``cache_seconds``, so several open pages cost CloudWatch one query each.
        """
        self._clients = clients
        self._names = list(names) if names is not None else None
        self._prefix = prefix
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._cache_lock = threading.Lock()

    def dashboards(self) -> list[str]:
        """The dashboards this source shows, by name."""
        client = self._clients(None)
        found: list[str] = []
        token: str | None = None
        while True:
            request: dict[str, Any] = {"DashboardNamePrefix": self._prefix} if self._prefix else {}
            if token:
                request["NextToken"] = token
            page = client.list_dashboards(**request)
            found += [entry["DashboardName"] for entry in page.get("DashboardEntries", [])]
            token = page.get("NextToken")
            if not token:
                break
        if self._names is not None:
            return [name for name in self._names if name in found]
        return sorted(found)

    def dashboard(self, name: str) -> dict[str, Any]:
        """A dashboard's body (parsed JSON)."""
        if self._names is not None and name not in self._names:
            raise DashboardNotFoundError(name)
        client = self._clients(None)
        try:
            body = client.get_dashboard(DashboardName=name)["DashboardBody"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("ResourceNotFound", "DashboardNotFoundError"):
                raise DashboardNotFoundError(name) from exc
            raise
        parsed = json.loads(body)
        if not isinstance(parsed, dict):
            raise BodyError("a dashboard body is a JSON object")
        return parsed

    def widget_data(
        self,
        properties: dict[str, Any],
        *,
        start: str | None = None,
        end: str | None = None,
        period: int | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """The series a metric widget draws: ``{"series": [...], "period": p, "start": ms, "end": ms}``.

        Each series has ``id``, ``label``, ``timestamps`` (epoch ms, ascending), ``values`` and the
        row's rendering options (``color``, ``yAxis``). Rows marked ``visible: false`` feed
        expressions but are not returned.
        """
        if now is not None or self._cache_seconds <= 0:
            return self._widget_data(properties, start=start, end=end, period=period, now=now)
        key = json.dumps([properties, start, end, period], sort_keys=True, default=str)
        with self._cache_lock:
            moment = time.monotonic()
            self._cache = {k: v for k, v in self._cache.items() if moment - v[0] < self._cache_seconds}
            if key in self._cache:
                return self._cache[key][1]
        data = self._widget_data(properties, start=start, end=end, period=period)
        with self._cache_lock:
            self._cache[key] = (time.monotonic(), data)
        return data

    def _widget_data(
        self,
        properties: dict[str, Any],
        *,
        start: str | None,
        end: str | None,
        period: int | None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        queries = widget_queries(properties, period)
        begin, finish = time_range(start or properties.get("start"), end or properties.get("end"), now)
        # CloudWatch aligns datapoints to the period; asking from an aligned start keeps moto's
        # buckets on the same boundaries.
        step = max(q.period for q in queries.series) if queries.series else queries.period
        aligned = int(begin.timestamp()) // step * step
        begin = datetime.fromtimestamp(aligned, begin.tzinfo)
        local, remote = _split_expressions(queries.series)
        fetched = self._fetch(
            [q for q in queries.series if q.expression is None] + remote,
            begin,
            finish,
            properties.get("region"),
        )
        periods = {q.id: q.period for q in queries.series if q.expression is None}
        errors: list[str] = []
        for query in local:
            try:
                fetched[query.id] = evaluate(query.expression or "", fetched, periods)
            except UnsupportedExpressionError as exc:
                errors.append(f"{query.label}: {exc}")
                fetched[query.id] = {}
        series = []
        for query in queries.series:
            if not query.visible:
                continue
            points = sorted(fetched.get(query.id, {}).items())
            series.append(
                {
                    "id": query.id,
                    "label": query.label,
                    "stat": None if query.expression else query.stat,
                    "timestamps": [t * 1000 for t, _ in points],
                    "values": [v for _, v in points],
                    "color": query.options.get("color"),
                    "yAxis": query.options.get("yAxis", "left"),
                }
            )
        return {
            "series": series,
            "period": queries.period,
            "start": int(begin.timestamp() * 1000),
            "end": int(finish.timestamp() * 1000),
            "errors": errors,
        }

    def _fetch(
        self, queries: list[SeriesQuery], begin: datetime, finish: datetime, region: str | None
    ) -> dict[str, Series]:
        if not queries:
            return {}
        client = self._clients(region)
        found: dict[str, Series] = {q.id: {} for q in queries}
        token: str | None = None
        while True:
            request: dict[str, Any] = {
                "MetricDataQueries": [q.metric_data_query() for q in queries],
                "StartTime": begin,
                "EndTime": finish,
                "ScanBy": "TimestampAscending",
            }
            if token:
                request["NextToken"] = token
            page = client.get_metric_data(**request)
            for result in page.get("MetricDataResults", []):
                values = found.setdefault(result["Id"], {})
                for moment, value in zip(
                    result.get("Timestamps", []), result.get("Values", []), strict=False
                ):
                    values[int(moment.timestamp())] = float(value)
            token = page.get("NextToken")
            if not token:
                return found


def _split_expressions(queries: list[SeriesQuery]) -> tuple[list[SeriesQuery], list[SeriesQuery]]:
    """Expressions this server evaluates, and the ones left to CloudWatch."""
    ids = {q.id for q in queries}
    dummy: dict[str, Series] = {i: {} for i in ids}
    local, remote = [], []
    for query in queries:
        if query.expression is None:
            continue
        try:
            if not referenced_ids(query.expression) <= ids:
                raise UnsupportedExpressionError(query.expression)
            evaluate(query.expression, dummy, dict.fromkeys(ids, 60))
        except UnsupportedExpressionError:
            remote.append(query)
        else:
            local.append(query)
    return local, remote
