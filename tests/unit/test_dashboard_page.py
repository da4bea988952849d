"""The dashboard page server's parts: dashboard bodies, metric math, GetMetricData and the JSON API.

CloudWatch is a fake here (no servers but the page's own on 127.0.0.1); the page against
localcloud's CloudWatch, in a browser, is tests/integration/test_dashboard_page.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from localcloud.dashboard import DashboardServer, MetricSource
from localcloud.dashboard.body import BodyError, time_range, widget_queries
from localcloud.dashboard.metric_math import UnsupportedExpressionError, evaluate, referenced_ids
from rich.console import Console

from alleycat.view import PipelineFigures, race_screen
from simulator import RunnerStats, plan_races

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)


class FakeCloudWatch:
    """Answers GetMetricData from ``points`` (query id -> [(epoch s, value)]) and records requests."""

    def __init__(self, points: dict[str, list[tuple[int, float]]] | None = None) -> None:
        self.points = points or {}
        self.requests: list[dict[str, Any]] = []
        self.bodies: dict[str, Any] = {
            "alpha": {"widgets": []},
            "beta": {"widgets": [{"type": "text"}]},
            "gamma": {
                "widgets": [
                    {"type": "metric", "properties": RATE_WIDGET},
                    {"type": "metric", "properties": {"metrics": [["N"]]}},
                ]
            },
        }

    def list_dashboards(self, **request: Any) -> dict[str, Any]:
        prefix = request.get("DashboardNamePrefix", "")
        return {"DashboardEntries": [{"DashboardName": n} for n in self.bodies if n.startswith(prefix)]}

    def get_dashboard(self, DashboardName: str) -> dict[str, Any]:  # noqa: N803 - boto3's keyword
        if DashboardName not in self.bodies:
            raise ClientError({"Error": {"Code": "ResourceNotFound", "Message": "no"}}, "GetDashboard")
        return {"DashboardBody": json.dumps(self.bodies[DashboardName])}

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        results = []
        for query in request["MetricDataQueries"]:
            points = self.points.get(query["Id"], [])
            results.append(
                {
                    "Id": query["Id"],
                    "Timestamps": [datetime.fromtimestamp(t, UTC) for t, _ in points],
                    "Values": [v for _, v in points],
                }
            )
        return {"MetricDataResults": results}


def source_with(fake: FakeCloudWatch, **kwargs: Any) -> MetricSource:
    return MetricSource(lambda region: fake, **kwargs)


# -- dashboard bodies ---------------------------------------------------------------------------------


def test_metric_rows_expand_dots_and_inherit_stat_and_period() -> None:
    properties = {
        "stat": "Sum",
        "period": 60,
        "metrics": [
            ["AWS/Lambda", "Errors", "FunctionName", "f1", {"label": "f1 errors"}],
            ["...", "f2", {"stat": "Maximum", "id": "second"}],
            [".", "Throttles", ".", "f3"],
            [{"expression": "m1 + second", "label": "both", "id": "total"}],
        ],
    }
    queries = widget_queries(properties).series
    assert [(q.id, q.metric_name, q.dimensions, q.stat, q.period) for q in queries[:3]] == [
        ("m1", "Errors", (("FunctionName", "f1"),), "Sum", 60),
        ("second", "Errors", (("FunctionName", "f2"),), "Maximum", 60),
        ("m3", "Throttles", (("FunctionName", "f3"),), "Sum", 60),
    ]
    assert queries[0].label == "f1 errors" and queries[2].label == "Throttles"
    assert queries[3].expression == "m1 + second" and queries[3].label == "both"
    assert [q.period for q in widget_queries(properties, period_override=10).series[:3]] == [10, 10, 10]


def test_a_malformed_row_is_a_body_error() -> None:
    with pytest.raises(BodyError):
        widget_queries({"metrics": [["AWS/Lambda", "Errors", "FunctionName"]]})


def test_relative_and_absolute_time_ranges() -> None:
    assert time_range("-PT15M", None, NOW) == (NOW - timedelta(minutes=15), NOW)
    assert time_range("-P1DT2H", "-PT1H", NOW) == (NOW - timedelta(days=1, hours=2), NOW - timedelta(hours=1))
    assert time_range("2026-11-21T10:00:00Z", None, NOW)[0] == NOW - timedelta(hours=2)
    with pytest.raises(BodyError):
        time_range("-PT1H", "-PT2H", NOW)
    with pytest.raises(BodyError):
        time_range("yesterday", None, NOW)


# -- metric math --------------------------------------------------------------------------------------


def test_metric_math_rates_fill_and_aggregates() -> None:
    m1 = {0: 600.0, 60: 1200.0}
    m2 = {60: 60.0, 120: 30.0}
    assert evaluate("m1 / PERIOD(m1)", {"m1": m1}, {"m1": 60}) == {0: 10.0, 60: 20.0}
    assert evaluate("m1 + m2", {"m1": m1, "m2": m2}, {}) == {60: 1260.0}  # only common timestamps
    assert evaluate("FILL(m2, 0)", {"m1": m1, "m2": m2}, {}) == {0: 0.0, 60: 60.0, 120: 30.0}
    assert evaluate("SUM([m1, m2])", {"m1": m1, "m2": m2}, {}) == {0: 600.0, 60: 1260.0, 120: 30.0}
    assert evaluate("m2 ^ 2 - -1", {"m2": m2}, {}) == {60: 3601.0, 120: 901.0}
    assert evaluate("m1 / 0", {"m1": m1}, {}) == {}  # division by zero leaves points out
    assert referenced_ids("FILL(m1, 0) / PERIOD(m2)") == {"m1", "m2"}


@pytest.mark.parametrize(
    "expression", ["ANOMALY_DETECTION_BAND(m1)", "m9 * 2", "m1 +", "SEARCH('x', 'Sum', 60)"]
)
def test_unsupported_metric_math_is_refused(expression: str) -> None:
    with pytest.raises(UnsupportedExpressionError):
        evaluate(expression, {"m1": {0: 1.0}}, {"m1": 60})


# -- GetMetricData ------------------------------------------------------------------------------------

RATE_WIDGET = {
    "region": "eu-west-1",
    "stat": "Sum",
    "period": 60,
    "metrics": [
        ["AWS/Kinesis", "IncomingRecords", "StreamName", "s", {"id": "m1", "visible": False}],
        [{"expression": "m1 / PERIOD(m1)", "label": "records/s", "id": "e1"}],
        ["AWS/Kinesis", "WriteProvisionedThroughputExceeded", "StreamName", "s", {"color": "#d62728"}],
    ],
}


def test_widget_data_evaluates_rates_and_hides_hidden_rows() -> None:
    t0 = int(NOW.timestamp()) - 600
    fake = FakeCloudWatch({"m1": [(t0, 60_000.0), (t0 + 60, 90_000.0)], "m3": [(t0 + 60, 12.0)]})
    data = source_with(fake).widget_data(RATE_WIDGET, start="-PT10M", now=NOW)
    (request,) = fake.requests
    sent = [q["Id"] for q in request["MetricDataQueries"]]
    assert sent == ["m1", "m3"], "the expression is evaluated here, not sent"
    assert request["StartTime"].timestamp() % 60 == 0, "start aligned to the period"
    assert request["MetricDataQueries"][0]["MetricStat"]["Stat"] == "Sum"
    assert [s["id"] for s in data["series"]] == ["e1", "m3"]
    rate = data["series"][0]
    assert rate["label"] == "records/s" and rate["values"] == [1000.0, 1500.0]
    assert rate["timestamps"] == [t0 * 1000, (t0 + 60) * 1000]
    assert data["series"][1]["color"] == "#d62728" and data["errors"] == []


def test_unknown_metric_math_goes_to_cloudwatch() -> None:
    fake = FakeCloudWatch({"band": [(int(NOW.timestamp()) - 60, 5.0)]})
    widget = {"metrics": [["N", "M"], [{"expression": "ANOMALY_DETECTION_BAND(m1)", "id": "band"}]]}
    data = source_with(fake).widget_data(widget, start="-PT1H", now=NOW)
    queries = fake.requests[0]["MetricDataQueries"]
    assert {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(m1)"}.items() <= queries[1].items()
    assert data["series"][1]["values"] == [5.0]


def test_dashboards_listed_and_restricted_to_the_stacks() -> None:
    fake = FakeCloudWatch()
    assert source_with(fake).dashboards() == ["alpha", "beta", "gamma"]
    only = source_with(fake, names=["beta", "gone"])
    assert only.dashboards() == ["beta"]
    assert only.dashboard("beta") == {"widgets": [{"type": "text"}]}
    with pytest.raises(LookupError):
        only.dashboard("alpha")


# -- the HTTP API ---------------------------------------------------------------------------------------


def _call(url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            kind = response.headers["Content-Type"]
            return response.status, json.loads(raw) if kind == "application/json" else raw.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_api_serves_the_page_dashboards_and_widget_data() -> None:
    t0 = int(datetime.now(UTC).timestamp()) // 60 * 60 - 120
    fake = FakeCloudWatch({"m1": [(t0, 120.0)]})
    routes = {"/status.json": lambda: (b'{"ok": true}', "application/json")}
    with DashboardServer(
        source_with(fake), title="Test <board>", routes=routes, links={"Status": "/status"}
    ) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, page = _call(server.url)
        assert status == 200 and "Test &lt;board&gt;" in page and '<a href="/status">Status</a>' in page
        status, script = _call(server.url + "static/dashboard.js")
        assert status == 200 and "drawTimeSeries" in script
        assert _call(server.url + "static/../server.py")[0] == 404
        assert _call(server.url + "status.json") == (200, {"ok": True})
        assert _call(server.url + "api/dashboards")[1]["dashboards"] == ["alpha", "beta", "gamma"]
        assert _call(server.url + "api/dashboards/beta")[1]["body"]["widgets"] == [{"type": "text"}]
        status, answer = _call(server.url + "api/dashboards/nope")
        assert status == 404 and "nope" in answer["message"]
        widget = {"properties": RATE_WIDGET, "start": "-PT10M", "period": 60}
        # Widget data is served only for widgets of a dashboard the page has been given.
        assert _call(server.url + "api/widget", widget)[0] == 403
        assert _call(server.url + "api/dashboards/gamma")[0] == 200
        status, data = _call(server.url + "api/widget", widget)
        assert status == 200 and data["series"][0]["values"] == [2.0]
        assert _call(server.url + "api/widget", {"start": "-PT1H"})[0] == 400
        bad = {"properties": {"metrics": [["N"]]}}
        assert _call(server.url + "api/widget", bad)[0] == 400


def test_widget_api_answers_only_the_served_dashboards_widgets() -> None:
    # Given a page that has shown dashboard gamma (one rate widget)
    fake = FakeCloudWatch()
    with DashboardServer(source_with(fake)) as server:
        assert _call(server.url + "api/dashboards/gamma")[0] == 200
        # When anything else asks for another metric with the process's AWS credentials
        other = dict(RATE_WIDGET, metrics=[["AWS/Billing", "EstimatedCharges", "Currency", "USD"]])
        status, answer = _call(server.url + "api/widget", {"properties": other})
        # Then CloudWatch is never asked
        assert status == 403 and "not a widget" in answer["message"]
        assert fake.requests == []
        # And the served widget itself, keys in any order, is answered
        reordered = dict(reversed(list(RATE_WIDGET.items())))
        assert _call(server.url + "api/widget", {"properties": reordered})[0] == 200


def test_cloudwatch_failures_are_reported_not_raised() -> None:
    class Broken(FakeCloudWatch):
        def get_metric_data(self, **request: Any) -> dict[str, Any]:
            raise ConnectionError("endpoint down")

    with DashboardServer(source_with(Broken())) as server:
        assert _call(server.url + "api/dashboards/gamma")[0] == 200
        status, answer = _call(server.url + "api/widget", {"properties": RATE_WIDGET})
    assert status == 502 and "endpoint down" in answer["message"]


# -- the race screen ------------------------------------------------------------------------------------


def _screen_text(pipeline: PipelineFigures | None) -> str:
    specs = plan_races([1], 10, duration=60)
    stats = RunnerStats(
        race_second=5,
        duration=60,
        races=1,
        messages_generated=50,
        messages_total=600,
        sent=50,
        failed=2,
        retried=40,
        elapsed_seconds=5,
        messages_per_second=10,
        failures_by_code={"ProvisionedThroughputExceededException": 2},
    )
    console = Console(width=160, record=True)
    console.print(race_screen(specs, stats, 10.0, {}, target="local", pipeline=pipeline))
    return console.export_text()


def test_race_screen_shows_throttling_and_iterator_age() -> None:
    text = _screen_text(
        PipelineFigures(throttled_records=1234, throttled_per_s=56, iterator_age_ms=12_500, updated_at=1)
    )
    assert "throttled records 1,234 (56/s now" in text
    assert "aggregator iterator age 12.5 s" in text
    assert "retries 40" in text and "ProvisionedThroughputExceededException 2" in text
    assert "waiting for CloudWatch" in _screen_text(PipelineFigures())
    assert "iterator age" not in _screen_text(None)


def test_answers_are_cached_briefly_so_open_pages_do_not_multiply_queries() -> None:
    fake = FakeCloudWatch()
    source = MetricSource(lambda region: fake, cache_seconds=60)
    first = source.widget_data(RATE_WIDGET, start="-PT5M")
    assert source.widget_data(RATE_WIDGET, start="-PT5M") is first
    assert len(fake.requests) == 1
    source.widget_data(RATE_WIDGET, start="-PT15M")
    assert len(fake.requests) == 2, "another range is another query"


def test_alleycat_dashboard_prints_the_local_page(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from alleycat.cli import main  # noqa: PLC0415 - the CLI module is heavy; only this test needs it

    config = tmp_path / "local.json"
    assert main(["dashboard", "--local-config", str(config)]) == 1, "no local stack: an error"
    config.write_text(json.dumps({"dashboard_url": "http://127.0.0.1:1234/"}))
    assert main(["dashboard", "--local-config", str(config)]) == 0
    assert capsys.readouterr().out.strip() == "http://127.0.0.1:1234/"


def test_pipeline_watch_sums_throttling_and_falls_back_to_the_streams_iterator_age() -> None:
    from alleycat.dashboard import PipelineWatch  # noqa: PLC0415 - keeps the CLI imports out of other tests

    class Target:
        is_local = True
        stream_name = "race-stream"

        def __init__(self) -> None:
            self.cloudwatch = FakeCloudWatch(
                {"throttled": [(0, 500.0), (5, 250.0)], "age": [(0, 1500.0), (5, 2500.0)]}
            )

        def client(self, service: str) -> Any:
            if service == "cloudformation":
                raise ConnectionError("no stack here")
            return self.cloudwatch

    target = Target()
    figures = PipelineWatch(target).poll()  # type: ignore[arg-type]
    assert (figures.throttled_records, figures.throttled_per_s, figures.iterator_age_ms) == (
        750,
        50.0,
        2500.0,
    )
    (request,) = target.cloudwatch.requests
    age = request["MetricDataQueries"][1]["MetricStat"]
    assert age["Metric"]["MetricName"] == "GetRecords.IteratorAgeMilliseconds", "the stream's figure"
    assert age["Stat"] == "Maximum" and age["Period"] == 5
