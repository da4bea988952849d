"""The dashboard page in headless Chromium, during a short local race.

The stack runs in-process (localcloud publishes AWS and application metrics to its CloudWatch); a
few seconds of racers go through the producer; then Chromium loads ``dashboard_url`` and the test
reads the DOM the page's script rendered: widget titles, SVG series with points, the shard-limit
and timeout annotations, the single-value numbers. A screenshot is kept in the test's tmp folder.

Without Chromium the test is skipped locally and fails in CI (``CI`` set): ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from alleycat.dashboard import PipelineWatch, stack_dashboards
from alleycat.stack import LocalStack
from alleycat.target import local_target
from producers import KinesisProducer
from simulator import RaceRunner, plan_races

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _require_chromium() -> str:
    if CHROMIUM:
        return CHROMIUM
    reason = "chromium is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}: CI must run the browser test")
    pytest.skip(reason)


def _chromium(
    url: str, profile: Path, *extra: str, budget_ms: int = 12_000
) -> subprocess.CompletedProcess[str]:
    command = [
        _require_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        "--window-size=1400,2000",
        *extra,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@dataclass
class Widget:
    """One rendered widget of the page, as the DOM shows it."""

    title: str = ""
    kind: str = ""
    view: str = ""
    state: str = ""
    series_points: list[int] = field(default_factory=list)  # data-points of each drawn path
    circles: int = 0
    annotations: list[float] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


class PageParser(HTMLParser):
    """Collects the widgets of a dumped dashboard page."""

    def __init__(self) -> None:
        super().__init__()
        self.widgets: list[Widget] = []
        self.body: dict[str, str] = {}
        self._current: Widget | None = None
        self._in_title = False
        self._in_value = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = a
        if tag == "section" and "widget" in a.get("class", ""):
            self._current = Widget(
                kind=a.get("data-type", ""), view=a.get("data-view", ""), state=a.get("data-state", "")
            )
            self.widgets.append(self._current)
        if self._current is None:
            return
        if tag == "h2" and not self._current.title:
            self._in_title = True
        elif tag == "path" and "series" in a.get("class", "").split():
            self._current.series_points.append(int(a.get("data-points", "0")))
        elif tag == "circle":
            self._current.circles += 1
        elif tag == "g" and a.get("class") == "annotation":
            self._current.annotations.append(float(a["data-value"]))
        elif tag == "div" and a.get("class") == "value":
            self._in_value = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._in_title = False
        if tag == "div":
            self._in_value = False

    def handle_data(self, data: str) -> None:
        if self._current is None:
            return
        if self._in_title:
            self._current.title += data
        elif self._in_value:
            self._current.numbers.append(data)
        self._current.text.append(data)


def _has_data(cloudwatch: Any) -> bool:
    now = datetime.now(UTC)
    queries = [
        {
            "Id": f"q{i}",
            "MetricStat": {
                "Metric": {"Namespace": ns, "MetricName": name, "Dimensions": dims},
                "Period": 60,
                "Stat": "Sum",
            },
        }
        for i, (ns, name, dims) in enumerate(
            [
                ("Alleycat", "RecordsAggregated", [{"Name": "service", "Value": "alleycat"}]),
                ("AWS/Kinesis", "IncomingRecords", []),
            ]
        )
    ]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=queries, StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1)
    )
    return all(r["Values"] for r in answer["MetricDataResults"])


@pytest.fixture(scope="module")
def raced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A local stack that has just run a 6-second, 200-racer race."""
    _require_chromium()
    home = tmp_path_factory.mktemp("dashboard")
    stack = LocalStack(home=home, persist=False)
    info = stack.start()
    try:
        target = local_target(stack.info_path)
        watch = PipelineWatch(target, every_s=1.0).start()
        specs = plan_races([1], 200, duration=6, seed=3, start_epoch_ms=int(time.time() * 1000))
        producer = KinesisProducer(stream_name=target.stream_name, client=target.client("kinesis"))
        try:
            summary = RaceRunner(specs, producer).run()
        finally:
            producer.close()
        assert summary.sent == 200 * 6 and summary.failed == 0
        # Metrics reach CloudWatch every few seconds: wait until the aggregator's (AWS/Lambda and
        # its own, from its log lines) have, so the page has something to draw.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            watch.latest().iterator_age_ms is not None and _has_data(target.client("cloudwatch"))
        ):
            time.sleep(0.5)
        figures = watch.latest()
        watch.stop()
        yield {"info": info, "stack": stack, "figures": figures, "home": home}
    finally:
        stack.stop()


def test_the_race_screen_figures_come_from_local_cloudwatch(raced: dict[str, Any]) -> None:
    figures = raced["figures"]
    assert figures.updated_at > 0, "CloudWatch answered"
    assert figures.iterator_age_ms is not None, "the aggregator's IteratorAge was published"
    assert figures.throttled_records >= 0


def test_the_stacks_dashboards_are_found_through_cloudformation(raced: dict[str, Any]) -> None:
    stack: LocalStack = raced["stack"]
    assert stack.cloud is not None
    names = stack_dashboards(stack.cloud.client("cloudformation"), "alleycat")
    assert names == [stack.stacks["alleycat"].outputs["DashboardName"]] == ["alleycat-us-east-1"]


def test_dashboard_url_serves_the_page_and_the_status(raced: dict[str, Any]) -> None:
    url = raced["info"]["dashboard_url"]
    with urllib.request.urlopen(url, timeout=10) as page:
        assert b"/static/dashboard.js" in page.read()
    with urllib.request.urlopen(url + "status.json", timeout=10) as status:
        assert b'"mappings"' in status.read()


def test_the_page_renders_the_stacks_dashboard_in_chromium(raced: dict[str, Any], tmp_path: Path) -> None:
    url = raced["info"]["dashboard_url"] + "?start=-PT5M&period=5&refresh=3"
    dumped = _chromium(url, tmp_path / "profile-dom", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    parser = PageParser()
    parser.feed(dumped.stdout)
    assert int(parser.body.get("data-rendered", "0")) >= 1, "the page's script finished a refresh"
    widgets = {w.title: w for w in parser.widgets if w.title}
    assert not [w.title for w in parser.widgets if w.state == "error"], "no widget failed"

    records = widgets["Stream: incoming records per second"]
    assert records.series_points and records.series_points[0] > 0, "records/s drawn from the race's data"
    assert records.circles > 0
    assert 1000.0 in records.annotations, "the shard limit of one shard (1,000 records/s)"
    assert widgets["Stream: incoming MiB per second"].annotations == [1.0]

    duration = widgets["Aggregator: duration"]
    assert duration.series_points and max(duration.series_points) > 0
    assert 60_000.0 in duration.annotations, "the aggregator's 60 s timeout"
    assert widgets["Aggregator: invocations"].series_points[0] > 0
    assert widgets["Aggregator: iterator age"].series_points[0] > 0
    assert widgets["Aggregator: records, writes and races (per period)"].series_points[0] > 0

    glance = widgets["At a glance (last period)"]
    assert glance.view == "singleValue" and len(glance.numbers) == 5
    assert any(n not in ("0", "\N{EN DASH}") for n in glance.numbers), glance.numbers
    text = next(w for w in parser.widgets if w.kind == "text")
    assert "per second" in " ".join(text.text)

    shot = tmp_path / "dashboard.png"
    taken = _chromium(url, tmp_path / "profile-shot", f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.is_file() and shot.stat().st_size > 50_000, "a screenshot with charts in it"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
