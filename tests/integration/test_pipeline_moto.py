"""End to end in moto: simulator → producer → Kinesis → aggregator → DynamoDB → publisher → API.

A small driver stands in for Lambda's event source mappings (tumbling windows, a replayed batch);
localcloud's own end-to-end test runs the same pipeline with the real mapping engine. Final
standings from the API must equal an oracle computed independently from the generated messages.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from typing import Any

import boto3
import orjson
import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iotdata.models import iotdata_backends
from moto.moto_api._internal.models import moto_api_backend
from moto.server import ThreadedMotoServer

from consumers.aggregator import handler as aggregator_handler
from consumers.publisher import handler as publisher_handler
from consumers.settings import aggregator_settings, publisher_settings
from leaderboard.api import reset as reset_api
from leaderboard.api.handler import lambda_handler as api_handler
from producers import KinesisProducer
from simulator import all_race_messages, plan_races
from tests.support.events import window_event
from tests.support.oracle import expected_standings
from tests.support.tables import create_races_table
from tests.unit.test_api_support import FakeLambdaContext, api_event

pytestmark = pytest.mark.integration

STREAM = "races"
WINDOW_BATCHES = 3  # batches per simulated tumbling window


def _reset_caches() -> None:
    for cached in (
        aggregator_settings,
        publisher_settings,
        aggregator_handler.aggregator,
        aggregator_handler.store,
        publisher_handler.publisher,
    ):
        cached.cache_clear()
    reset_api()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    # Server mode: every client, the handlers' included, talks HTTP to moto on 127.0.0.1.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{server._server.server_port}"  # type: ignore[union-attr]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    try:
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        table = create_races_table(ddb)
        queue = sqs.create_queue(QueueName="failures")["QueueUrl"]
        monkeypatch.setenv("TABLE_NAME", table)
        monkeypatch.setenv("FAILURE_QUEUE_URL", queue)
        monkeypatch.setenv("IOT_DATA_ENDPOINT", endpoint)
        monkeypatch.setenv("CURSOR_SECRET", "pipeline-test-secret-0123456789abcdef")
        _reset_caches()
        yield {"kinesis": kinesis, "ddb": ddb, "sqs": sqs, "table": table, "queue": queue}
    finally:
        _reset_caches()
        server.stop()
        reset_moto()


def reset_moto() -> None:
    """Server mode shares the process's backends: leave them empty for the next test."""
    moto_api_backend.reset()


def _read_shard(kinesis: Any, shard_id: str) -> list[dict[str, Any]]:
    """Every record of a shard, as Lambda's Kinesis event records."""
    iterator = kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    stream_arn = kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"]["StreamARN"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=500)
        for r in page["Records"]:
            records.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r["PartitionKey"],
                        "sequenceNumber": r["SequenceNumber"],
                        "data": base64.b64encode(r["Data"]).decode(),
                        "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{shard_id}:{r['SequenceNumber']}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::123456789012:role/aggregator",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": stream_arn,
                }
            )
        if not page["Records"]:
            break
        iterator = page.get("NextShardIterator")
    return records


def _drive_aggregator(kinesis: Any, context: Any) -> None:
    """Tumbling windows over each shard, with one batch delivered twice (a retry)."""
    shards = kinesis.list_shards(StreamName=STREAM)["Shards"]
    for shard in shards:
        records = _read_shard(kinesis, shard["ShardId"])
        batches = [records[i : i + 400] for i in range(0, len(records), 400)]
        if batches:
            batches.insert(2, batches[0])  # Lambda re-delivers a batch after a retry
        state: dict[str, Any] = {}
        for index, batch in enumerate(batches, start=1):
            response = aggregator_handler.lambda_handler(window_event(batch, state), context)
            assert response["batchItemFailures"] == []
            state = response["state"]
            if index % WINDOW_BATCHES == 0 or index == len(batches):
                final = aggregator_handler.lambda_handler(window_event([], state, final=True), context)
                assert final["state"] == {}
                state = {}


def _drive_publisher(ddb: Any, table: str, context: Any) -> None:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    stream_arn = ddb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    for shard in streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=100)
            if not page["Records"]:
                break
            records = []
            for r in page["Records"]:
                record = orjson.loads(orjson.dumps(r, default=str))
                record["eventSourceARN"] = stream_arn
                records.append(record)
            response = publisher_handler.lambda_handler({"Records": records}, context)
            assert response == {"batchItemFailures": []}
            iterator = page.get("NextShardIterator")


def _api(path: str, query: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    response = api_handler(api_event(path, query), FakeLambdaContext())  # type: ignore[arg-type]
    return response["statusCode"], orjson.loads(response["body"])


def test_race_through_the_pipeline_matches_the_oracle(aws: dict[str, Any]) -> None:
    specs = plan_races([1, 2], 200, duration=30, seed=11, start_epoch_ms=1_790_000_000_000)
    messages = [m for spec in specs for m in all_race_messages(spec)]
    rnd = random.Random(5)
    # Out of order within every few seconds of the race, plus 10% duplicates re-sent later on (the
    # property tests cover arbitrary orders; this is what a network does to a live race).
    chunk = len(messages) // 10
    sent = []
    for start in range(0, len(messages), chunk):
        part = messages[start : start + chunk] + rnd.sample(messages[: start + chunk], chunk // 10)
        rnd.shuffle(part)
        sent.extend(part)

    producer = KinesisProducer(stream_name=STREAM, client=aws["kinesis"], max_in_flight=1)
    with producer:
        for m in sent:
            producer.put(orjson.dumps(m), m["raceId"])
    assert producer.stats().failed == 0
    assert producer.stats().sent == len(sent)

    context = FakeLambdaContext()
    _drive_aggregator(aws["kinesis"], context)
    _drive_publisher(aws["ddb"], aws["table"], context)

    oracle = expected_standings(messages)
    for spec in specs:
        status, body = _api(f"/races/{spec.race_id}/leaderboard", {"limit": "1000"})
        assert status == 200, body
        assert body["status"] == "final"  # every racer sent its final message
        got = [
            {"rank": s["rank"], "racerId": s["racerId"], "totalOutput": s["totalOutput"]}
            for s in body["standings"]
        ]
        assert got == oracle[spec.race_id]

    published = iotdata_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].published_payloads
    for spec in specs:
        updates = [orjson.loads(p) for t, p in published if t == f"alleycat/races/{spec.race_id}/standings"]
        assert updates, "no standings were published"
        assert updates[-1]["status"] == "final"
        top = oracle[spec.race_id][: len(updates[-1]["standings"])]
        assert [s["racerId"] for s in updates[-1]["standings"]] == [s["racerId"] for s in top]

    status, races = _api("/races", {"classId": "1"})
    assert status == 200 and [r["raceId"] for r in races["races"]] == [specs[0].race_id]
    # Nothing was malformed, so nothing was quarantined.
    assert "Messages" not in aws["sqs"].receive_message(QueueUrl=aws["queue"])
