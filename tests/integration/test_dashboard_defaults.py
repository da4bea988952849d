"""The local dashboard page opens on a range and period a fresh stack has data for (10 minutes of
10 s periods), and the header's "per period (60 s)" follows the period the charts use."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from localcloud.dashboard import DashboardServer

from alleycat.dashboard import LOCAL_DEFAULT_PERIOD_S, LOCAL_DEFAULT_START, local_dashboard_server
from tests.support.browser import require_chromium
from tests.unit.test_dashboard_page import RATE_WIDGET, FakeCloudWatch, source_with

pytestmark = [pytest.mark.integration]

HEADER = "Throttle and count widgets are **Sums per period** (60 s)."


def _dump_dom(url: str, profile: Path) -> str:
    command = [
        require_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _serve(fake: FakeCloudWatch, **defaults: Any) -> DashboardServer:
    fake.bodies = {
        "board": {
            "widgets": [
                {"type": "text", "properties": {"markdown": HEADER}},
                {"type": "metric", "properties": RATE_WIDGET},
            ]
        }
    }
    return DashboardServer(source_with(fake), **defaults)


def test_local_defaults_pick_range_and_period_and_the_header_follows(tmp_path: Path) -> None:
    fake = FakeCloudWatch()
    with _serve(fake, default_start=LOCAL_DEFAULT_START, default_period=LOCAL_DEFAULT_PERIOD_S) as server:
        dom = _dump_dom(server.url, tmp_path / "profile")
    assert "Sums per period</strong> (10 s)" in dom
    assert fake.requests, "the page asked for the widget's data"
    request = fake.requests[0]
    assert {q["MetricStat"]["Period"] for q in request["MetricDataQueries"] if "MetricStat" in q} == {10}
    assert timedelta(minutes=9) <= request["EndTime"] - request["StartTime"] <= timedelta(minutes=11)


def test_without_defaults_the_widgets_own_period_and_header_stay(tmp_path: Path) -> None:
    fake = FakeCloudWatch()
    with _serve(fake) as server:
        dom = _dump_dom(server.url, tmp_path / "profile")
    assert "Sums per period</strong> (60 s)" in dom
    request = fake.requests[0]
    assert {q["MetricStat"]["Period"] for q in request["MetricDataQueries"] if "MetricStat" in q} == {60}


def test_the_local_stack_serves_the_local_defaults() -> None:
    class Status:
        def page(self) -> str:
            return ""

        def snapshot(self) -> dict[str, Any]:
            return {}

    server = local_dashboard_server("http://127.0.0.1:1", "us-east-1", Status())
    try:
        assert (server.default_start, server.default_period) == ("-PT10M", 10)
    finally:
        server.stop()
