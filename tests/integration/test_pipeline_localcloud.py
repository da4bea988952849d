"""The core pipeline on localcloud: the real event source mappings (tumbling windows, the table's
stream), the Lambda runtime, the API Gateway front door and the IoT data plane — no test driver.

Two races of 200 racers x 30 s, out of order with 10% duplicates, must end with API standings equal
to an oracle computed independently from the generated messages.
"""

from __future__ import annotations

import json
import random
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from alleycat.stack import LocalStack
from producers import KinesisProducer
from simulator import all_race_messages, plan_races
from tests.support.oracle import expected_standings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(home=tmp_path_factory.mktemp("pipeline"), persist=False)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _get(url: str) -> dict[str, Any]:
    # API Gateway itself waits 29 s; a cold start on a busy machine once took over 10.
    with urllib.request.urlopen(url, timeout=30) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def test_race_on_localcloud_matches_the_oracle(stack: LocalStack) -> None:
    assert stack.cloud is not None and stack.iot is not None
    outputs = stack.stacks["alleycat"].outputs
    specs = plan_races([1, 2], 200, duration=30, seed=11, start_epoch_ms=int(time.time() * 1000))
    messages = [m for spec in specs for m in all_race_messages(spec)]
    rnd = random.Random(3)
    chunk = len(messages) // 10
    sent: list[dict[str, Any]] = []
    for start in range(0, len(messages), chunk):
        part = messages[start : start + chunk] + rnd.sample(messages[: start + chunk], chunk // 10)
        rnd.shuffle(part)
        sent.extend(part)

    with KinesisProducer(stream_name=outputs["StreamName"], client=stack.cloud.client("kinesis")) as producer:
        for m in sent:
            producer.put(orjson.dumps(m), m["raceId"])
    assert producer.last_result is not None and producer.last_result.ok

    assert stack.cloud.wait_for_mappings(timeout=120, include_windows=True)
    oracle = expected_standings(messages)
    for spec in specs:
        body = _get(f"{outputs['ApiUrl']}/races/{spec.race_id}/leaderboard?limit=1000")
        assert body["status"] == "final"
        got = [
            {"rank": s["rank"], "racerId": s["racerId"], "totalOutput": s["totalOutput"]}
            for s in body["standings"]
        ]
        assert got == oracle[spec.race_id]
    # Nothing malformed was sent, so the failure queue stays empty.
    sqs = stack.cloud.client("sqs")
    assert "Messages" not in sqs.receive_message(QueueUrl=outputs["DeadLetterQueueUrl"])


def test_poison_records_are_quarantined_and_never_block_the_shard(stack: LocalStack) -> None:
    assert stack.cloud is not None
    outputs = stack.stacks["alleycat"].outputs
    kinesis = stack.cloud.client("kinesis")
    race_id = 8_800_000_000 + int(time.time()) % 1_000_000
    good = [
        {
            "event": "final" if s == 2 else "update",
            "deviceTimestamp": int(time.time() * 1000),
            "second": s,
            "raceId": race_id,
            "name": "Ada",
            "racerId": 1,
            "classId": 4,
            "cadence": 70,
            "resistance": 50,
        }
        for s in (1, 2)
    ]
    poison = [b"{not json", orjson.dumps({**good[0], "cadence": "fast"}), orjson.dumps({"raceId": race_id})]
    records = [orjson.dumps(good[0]), *poison, orjson.dumps(good[1])]
    kinesis.put_records(
        StreamName=outputs["StreamName"], Records=[{"Data": r, "PartitionKey": str(race_id)} for r in records]
    )
    assert stack.cloud.wait_for_mappings(timeout=60, include_windows=True)
    body = _get(f"{outputs['ApiUrl']}/races/{race_id}/leaderboard")
    assert body["status"] == "final"
    assert body["standings"][0]["totalOutput"] == expected_standings(good)[race_id][0]["totalOutput"]
    sqs = stack.cloud.client("sqs")
    parked: list[dict[str, Any]] = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=outputs["DeadLetterQueueUrl"], MaxNumberOfMessages=10)
        parked.extend(orjson.loads(m["Body"]) for m in got.get("Messages", []))
        if len(parked) >= 3:
            break
    assert sorted(p["payload"] for p in parked) == sorted(p.decode() for p in poison)
    assert all(p["reason"] for p in parked)
