"""A short simulated race through the producer into a Kinesis stream (moto), read back from all shards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest

from producers import KinesisProducer
from simulator import RaceRunner, RunnerStats, all_race_messages, plan_races
from tests.integration.test_producer_kinesis import (  # the module's moto server fixture
    MOTO_SAFE_IN_FLIGHT,
    REGION,
    create_stream,
    moto_endpoint,  # noqa: F401 - pytest fixture
    read_stream,
    user_payloads,
)

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
START_MS = 1_700_000_000_000


def message_key(message: dict) -> tuple[int, int, int]:
    return (message["raceId"], message["racerId"], message["second"])


@pytest.mark.parametrize("aggregate", [False, True], ids=["plain", "aggregated"])
def test_simulated_race_arrives_exactly_once(moto_endpoint: str, aggregate: bool):  # noqa: F811
    # Given two classes of 50 racers racing 5 seconds, played at 100x
    stream = create_stream(moto_endpoint, shards=2)
    races = plan_races([1, 2], racers=50, duration=5, seed=42, start_epoch_ms=START_MS)
    seen: list[RunnerStats] = []
    with KinesisProducer(
        stream,
        endpoint_url=moto_endpoint,
        region=REGION,
        aggregate=aggregate,
        max_in_flight=MOTO_SAFE_IN_FLIGHT,
    ) as producer:
        summary = RaceRunner(races, producer, speed=100, progress=seen.append).run()

    # Then the summary accounts for every message
    assert (summary.messages_generated, summary.sent, summary.failed) == (500, 500, 0)
    assert seen[-1].finished and seen[-1].sent == 500

    # And reading every shard back gives each generated message exactly once, under its race's key
    stored = read_stream(moto_endpoint, stream)
    received = user_payloads(stored)
    messages = [orjson.loads(data) for _key, data in received]
    assert all(key == str(m["raceId"]) for (key, _), m in zip(received, messages, strict=True))
    expected = [m for race in races for m in all_race_messages(race)]
    assert Counter(message_key(m) for m in messages) == Counter(message_key(m) for m in expected)
    assert sorted(messages, key=message_key) == sorted(expected, key=message_key)
    if aggregate:
        assert len(stored) < len(messages)


def test_command_line_sends_a_race_to_the_stream(moto_endpoint: str):  # noqa: F811
    stream = create_stream(moto_endpoint, shards=1)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulator",
            "--racers",
            "20",
            "--classes",
            "3,4",
            "--duration",
            "3",
            "--seed",
            "5",
            "--speed",
            "50",
            "--stream-name",
            stream,
            "--endpoint-url",
            moto_endpoint,
            "--region",
            REGION,
            "--aggregate",
            "--quiet",
            "--json-summary",
            "--start-time",
            str(START_MS),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    summary = orjson.loads(result.stdout.decode().strip().splitlines()[-1])
    assert summary["sent"] == 120 and summary["failed"] == 0 and len(summary["raceIds"]) == 2
    messages = [orjson.loads(data) for _key, data in user_payloads(read_stream(moto_endpoint, stream))]
    assert len(messages) == 120
    assert {m["raceId"] for m in messages} == set(summary["raceIds"])
    assert Counter(m["event"] for m in messages) == {"update": 80, "final": 40}
