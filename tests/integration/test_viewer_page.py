"""The viewer page in headless Chromium, during a real local race.

A local stack runs in-process; Chromium opens ``viewer_url`` before the race starts; a 30-racer,
30-second race goes through the producer. The test reads the page's DOM over the DevTools protocol
while the race runs (the standings change, over MQTT, with the same row elements kept), and after
it ends (final results equal to the API's leaderboard), then uses the past-race picker, the all-time
board and "around me". No console errors are allowed. Screenshots at phone and desktop widths go to
the test's tmp folder, or to ``$VIEWER_SCREENSHOTS`` (docs/images when refreshing the README's).
"""

from __future__ import annotations

import os
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from alleycat.stack import LocalStack
from alleycat.target import local_target
from producers import KinesisProducer
from simulator import RaceRunner, RunSummary, plan_races
from tests.support.browser import Browser, require_chromium, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RACERS, SECONDS, CLASS_ID = 30, 30, 4

# The board as the page shows it: rows in the order of their places.
ROWS_JS = """[...document.querySelectorAll('#board .row')]
  .map(r => ({racerId: +r.dataset.racerId, rank: +r.dataset.rank, place: +r.dataset.place,
              total: +r.dataset.total, name: r.querySelector('.name').textContent}))
  .sort((a, b) => a.place - b.place)"""
PAGE_JS = """({view: document.body.dataset.view ?? '', raceId: document.body.dataset.raceId ?? '',
  status: document.body.dataset.status ?? '', updates: +(document.body.dataset.updates ?? 0),
  mqtt: document.body.dataset.mqtt, title: document.getElementById('board-title').textContent,
  clock: document.getElementById('clock').textContent,
  notice: document.getElementById('notice').hidden ? '' : document.getElementById('notice').textContent})"""


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: dict[str, Any] = orjson.loads(response.read())
        return body


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A running local stack (its local.json content)."""
    require_chromium()
    stack = LocalStack(home=tmp_path_factory.mktemp("viewer"), persist=False)
    info = stack.start()
    try:
        yield info | {"info_path": stack.info_path}
    finally:
        stack.stop()


def _shots_dir(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("VIEWER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_page_follows_a_live_race_and_ends_with_the_apis_results(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    # Given a page open on the viewer before any race of the class has started
    viewer_url, api_url = stack["viewer_url"], stack["api_url"]
    config = _get(viewer_url + "config.json")
    assert config["mqttUrl"] == stack["mqtt_url"] and config["identityPoolId"] == "local"
    shots = _shots_dir(tmp_path)
    with Browser(tmp_path / "profile") as browser:
        browser.open(f"{viewer_url}?class={CLASS_ID}")
        wait_for(lambda: browser.evaluate(PAGE_JS)["mqtt"] == "connected" or None, 30, "the MQTT connection")

        # When a race runs
        target = local_target(stack["info_path"])
        specs = plan_races(
            [CLASS_ID], RACERS, duration=SECONDS, seed=11, start_epoch_ms=int(time.time() * 1000)
        )
        race_id = specs[0].race_id
        producer = KinesisProducer(stream_name=target.stream_name, client=target.client("kinesis"))
        summary: list[RunSummary] = []
        runner = threading.Thread(
            target=lambda: summary.append(RaceRunner(specs, producer).run()), daemon=True
        )
        runner.start()
        try:
            # Then the page switches to it by itself (the class topic) and its standings change
            # while the race runs, through MQTT, keeping each racer's row element.
            first = wait_for(
                lambda: _live_board(browser, race_id, min_rows=5), 45, "the live race's standings on the page"
            )
            browser.evaluate("document.querySelectorAll('#board .row').forEach(r => { r.__kept = true; })")
            changed = wait_for(
                lambda: _changed(browser, first), 30, "the page's standings to change while the race runs"
            )
            assert (
                changed["page"]["status"] == "live" and changed["page"]["updates"] > first["page"]["updates"]
            )
            kept = browser.evaluate(
                "[...document.querySelectorAll('#board .row')].filter(r => r.__kept).length"
            )
            assert kept >= len(first["rows"]), "rows are updated in place, not re-created"
            assert re.fullmatch(r"\d+:\d\d", changed["page"]["clock"]), "the race clock runs"
            browser.screenshot(shots / "viewer-desktop.png", width=1280, height=900)
            browser.screenshot(shots / "viewer-phone.png", width=390, height=844, mobile=True)
        finally:
            runner.join(timeout=SECONDS + 60)
            producer.close()
        assert summary and summary[0].sent == RACERS * SECONDS and summary[0].failed == 0

        # And after the race its final results are the API's leaderboard
        final = wait_for(
            lambda: ((p := browser.evaluate(PAGE_JS))["status"] == "final" and "Final" in p["title"]) or None,
            90,
            "the page to show final results",
        )
        api = _get(f"{api_url}/races/{race_id}/leaderboard?limit=50")
        assert api["status"] == "final"
        rows = browser.evaluate(ROWS_JS)
        assert [(r["rank"], r["racerId"], r["total"]) for r in rows] == [
            (s["rank"], s["racerId"], s["totalOutput"]) for s in api["standings"]
        ]
        assert len(rows) == RACERS and final

        # The past-race picker lists the race, newest first; the all-time board is the API's
        options = browser.evaluate("[...document.getElementById('race-picker').options].map(o => o.value)")
        assert options[0] == "live" and str(race_id) in options
        browser.evaluate("document.getElementById('alltime').click()")
        bests = _get(f"{api_url}/classes/{CLASS_ID}/leaderboard?limit=50")["standings"]
        wait_for(
            lambda: (
                [r["racerId"] for r in browser.evaluate(ROWS_JS)] == [s["racerId"] for s in bests] or None
            ),
            20,
            "the all-time board",
        )
        assert "All-time" in browser.evaluate(PAGE_JS)["title"]

        # "Around me" shows the racer's neighbourhood from the API
        browser.evaluate(
            f"document.getElementById('race-picker').value = '{race_id}';"
            "document.getElementById('race-picker').dispatchEvent(new Event('change'))"
        )
        wait_for(lambda: browser.evaluate(PAGE_JS)["raceId"] == str(race_id) or None, 20, "the past race")
        middle = api["standings"][RACERS // 2]["racerId"]
        browser.evaluate(
            f"document.getElementById('racer-id').value = '{middle}';"
            "document.getElementById('search').requestSubmit()"
        )
        around = _get(f"{api_url}/races/{race_id}/racers/{middle}?around=5")
        wait_for(
            lambda: (
                browser.evaluate(
                    "[...document.querySelectorAll('#around-board .row')]"
                    ".sort((a, b) => a.dataset.place - b.dataset.place).map(r => +r.dataset.racerId)"
                )
                == [s["racerId"] for s in around["neighbours"]]
                or None
            ),
            20,
            "the racer's neighbourhood",
        )
        assert browser.evaluate("document.querySelector('#board .row.followed')?.dataset.racerId") == str(
            middle
        )
        browser.screenshot(shots / "viewer-final-desktop.png", width=1280, height=900)
        assert browser.errors() == [], "the page logged no errors"


def _live_board(browser: Browser, race_id: int, min_rows: int) -> dict[str, Any] | None:
    page = browser.evaluate(PAGE_JS)
    if page["notice"]:
        raise AssertionError(f"the page shows an error: {page['notice']}")
    if page["raceId"] != str(race_id) or page["status"] != "live" or page["updates"] < 1:
        return None
    rows = browser.evaluate(ROWS_JS)
    return {"page": page, "rows": rows} if len(rows) >= min_rows else None


def _changed(browser: Browser, before: dict[str, Any]) -> dict[str, Any] | None:
    page = browser.evaluate(PAGE_JS)
    rows = browser.evaluate(ROWS_JS)
    totals = {r["racerId"]: r["total"] for r in rows}
    earlier = {r["racerId"]: r["total"] for r in before["rows"]}
    if page["status"] == "live" and totals != earlier:
        return {"page": page, "rows": rows}
    return None
