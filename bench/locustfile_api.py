"""The API benchmark's load: locust users asking the local API for one route as fast as it answers.

Run by ``bench/bench_api.py`` as ``locust -f bench/locustfile_api.py --headless ...`` in a process
of its own, so the clients never share an interpreter with the front door they measure. The target
comes from the environment:

- ``API_BENCH_HOST``: the API's base URL (``http://127.0.0.1:PORT/restapis/ID/Prod``);
- ``API_BENCH_ROUTE``: ``leaderboard`` (top 100 of the race), ``around`` (a racer and 5 neighbours
  each side) or ``class`` (top 100 personal bests of the class);
- ``API_BENCH_RACE`` / ``API_BENCH_RACERS`` / ``API_BENCH_CLASS``: the seeded race, its racer
  count and its class;
- ``API_BENCH_OUT``: a file that receives every request's (ok, milliseconds) as JSON at the end.

locust's own statistics round response times above 100 ms to 10 ms buckets; the raw samples let
the benchmark compute exact percentiles.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from locust import FastHttpUser, constant, events, task

ROUTE = os.environ.get("API_BENCH_ROUTE", "leaderboard")
RACE_ID = int(os.environ.get("API_BENCH_RACE", "1"))
RACERS = int(os.environ.get("API_BENCH_RACERS", "1"))
CLASS_ID = int(os.environ.get("API_BENCH_CLASS", "0"))
OUT = os.environ.get("API_BENCH_OUT")

_samples: list[tuple[bool, float]] = []


def _record(response_time: float, exception: BaseException | None, **_: Any) -> None:
    _samples.append((exception is None, float(response_time)))


def _dump(**_: Any) -> None:
    if OUT:
        with open(OUT, "w", encoding="utf-8") as out:
            json.dump(_samples, out)


events.request.add_listener(_record)  # type: ignore[no-untyped-call]  # locust leaves it unannotated
events.quitting.add_listener(_dump)  # type: ignore[no-untyped-call]


class ApiClient(FastHttpUser):
    """One of the concurrent clients: a closed loop, the next request as soon as one is answered."""

    wait_time = constant(0)
    # A client of the API keeps its connection open, as browsers and SDKs do.
    concurrency = 1

    @task
    def ask(self) -> None:
        """One request of the configured route; anything but a 200 with the expected rows fails."""
        if ROUTE == "leaderboard":
            path, name = f"/races/{RACE_ID}/leaderboard?limit=100", "leaderboard"
        elif ROUTE == "around":
            racer = random.randint(1, RACERS)
            path, name = f"/races/{RACE_ID}/racers/{racer}?around=5", "around"
        else:
            path, name = f"/classes/{CLASS_ID}/leaderboard?limit=100", "class"
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            body = response.json()
            rows = body.get("neighbours") if ROUTE == "around" else body.get("standings")
            if not rows:
                response.failure("no rows in the answer")
