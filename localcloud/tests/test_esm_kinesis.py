"""Kinesis mappings: event shape, batching, starting positions, checkpoints, sync and stats."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel
from esm_support import (
    ACCOUNT,
    FAST,
    REGION,
    Aws,
    EngineFactory,
    RecordingInvoker,
    aws,
    data_of,
    invoker,
    make_engine,
    moto_endpoint,
    seq_of,
    wait_for,
)
from localcloud.esm import EngineSettings, MappingEngine

__all__ = ["aws", "invoker", "make_engine", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_delivers_records_in_the_exact_kinesis_event_shape(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given a stream with records and a mapping to a function
    name, fn_arn, role = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    seqs = [aws.put(stream, {"n": i}, key=f"key-{i}") for i in range(5)]
    aws.mapping(name, stream_arn)
    # When the engine runs to the tip
    engine = make_engine()
    assert engine.wait_until_idle(10)
    # Then every record arrives once, in order, in Lambda's Kinesis event shape
    records = invoker.delivered(name)
    assert [seq_of(r) for r in records] == seqs
    first = records[0]
    assert set(first) == {
        "kinesis",
        "eventSource",
        "eventVersion",
        "eventID",
        "eventName",
        "invokeIdentityArn",
        "awsRegion",
        "eventSourceARN",
    }
    assert first["eventSource"] == "aws:kinesis"
    assert first["eventVersion"] == "1.0"
    assert first["eventName"] == "aws:kinesis:record"
    assert first["eventID"] == f"shardId-000000000000:{seqs[0]}"
    assert first["invokeIdentityArn"] == role
    assert first["awsRegion"] == REGION
    assert first["eventSourceARN"] == stream_arn
    assert first["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert first["kinesis"]["partitionKey"] == "key-0"
    assert isinstance(first["kinesis"]["approximateArrivalTimestamp"], float)
    assert abs(first["kinesis"]["approximateArrivalTimestamp"] - time.time()) < 60
    assert [data_of(r) for r in records] == [{"n": i} for i in range(5)]
    # And the events validate against powertools' independent parser model
    for call in invoker.calls_for(name):
        KinesisDataStreamModel.model_validate(call.event)
    assert fn_arn.endswith(f":function:{name}")


def _numbers(records: list[dict[str, object]]) -> list[int]:
    return [data_of(r)["n"] for r in records]


def test_batch_size_caps_each_invocation(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    aws.put_many(stream, [("k", {"n": i}) for i in range(25)])
    aws.mapping(name, stream_arn, BatchSize=10)
    assert make_engine().wait_until_idle(10)
    assert [len(c.records) for c in invoker.calls_for(name)] == [10, 10, 5]
    assert _numbers(invoker.delivered(name)) == list(range(25))


def test_payload_cap_of_six_megabytes_splits_batches(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given 8 records of ~900 KB (1.2 MB each once base64-encoded)
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    for i in range(8):
        aws.put(stream, json.dumps({"n": i, "pad": "x" * 900_000}).encode())
    aws.mapping(name, stream_arn, BatchSize=100)
    assert make_engine().wait_until_idle(20)
    calls = invoker.calls_for(name)
    assert len(calls) >= 2
    assert all(len(json.dumps(c.event)) <= 6 * 1024 * 1024 for c in calls)
    assert sum(len(c.records) for c in calls) == 8


def test_batching_window_gathers_records(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given MaximumBatchingWindowInSeconds=1 and records trickling in
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, BatchSize=100, MaximumBatchingWindowInSeconds=1)
    engine = make_engine()
    for i in range(5):
        aws.put(stream, {"n": i})
        time.sleep(0.1)
    assert wait_for(lambda: bool(invoker.calls_for(name)), timeout=5)
    assert engine.wait_until_idle(10)
    # Then they arrive together, in one invocation
    assert [_numbers(c.records) for c in invoker.calls_for(name)] == [[0, 1, 2, 3, 4]]


def test_latest_starts_at_the_tip(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    aws.put(stream, {"n": 0})
    aws.mapping(name, stream_arn, StartingPosition="LATEST")
    engine = make_engine()
    assert engine.wait_until_idle(10)
    aws.put(stream, {"n": 1})
    assert engine.wait_until_idle(10)
    assert _numbers(invoker.delivered(name)) == [1]


def test_at_timestamp_starts_at_the_timestamp(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    aws.put(stream, {"n": 0})
    time.sleep(0.05)
    cut = time.time()
    time.sleep(0.05)
    aws.put(stream, {"n": 1})
    aws.mapping(name, stream_arn, StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=cut)
    assert make_engine().wait_until_idle(10)
    assert _numbers(invoker.delivered(name)) == [1]


def test_restart_mid_stream_skips_nothing(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory, tmp_path: Path
) -> None:
    # Given an engine stopped while records keep arriving
    name, *_ = aws.function()
    invoker.register(name, lambda event: time.sleep(0.005))
    stream, stream_arn = aws.stream(shards=2)
    aws.mapping(name, stream_arn, BatchSize=3)
    state = tmp_path / "restart"
    first = make_engine(state_dir=state)
    aws.put_many(stream, [(f"k{i % 5}", {"n": i}) for i in range(60)])
    time.sleep(0.1)
    first.stop()
    aws.put_many(stream, [(f"k{i % 5}", {"n": i}) for i in range(60, 90)])
    # When a new engine with the same state directory starts
    second = make_engine(state_dir=state)
    assert second.wait_until_idle(20)
    # Then every record was delivered at least once; duplicates only within the in-flight batch
    delivered = _numbers(invoker.delivered(name))
    assert set(delivered) == set(range(90))
    assert len(delivered) - 90 <= 2 * 3
    assert (state / "esm-checkpoints").is_dir()


def test_restart_with_latest_keeps_records_put_while_stopped(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory, tmp_path: Path
) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    aws.mapping(name, stream_arn, StartingPosition="LATEST")
    first = make_engine(state_dir=tmp_path / "latest")
    assert first.wait_until_idle(10)
    first.stop()
    aws.put(stream, {"n": 7})
    second = make_engine(state_dir=tmp_path / "latest")
    assert second.wait_until_idle(10)
    assert _numbers(invoker.delivered(name)) == [7]


def test_sync_follows_created_disabled_enabled_updated_and_deleted_mappings(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    stream, stream_arn = aws.stream()
    lam = aws.client("lambda")
    # In memory: checkpoints must survive disable/enable and updates without a state directory
    engine = make_engine(in_memory=True)
    # Created after the engine started
    uuid = aws.mapping(name, stream_arn)["UUID"]
    aws.put(stream, {"n": 0})
    assert engine.wait_until_idle(10)
    assert _numbers(invoker.delivered(name)) == [0]
    # Disabled: nothing is delivered
    lam.update_event_source_mapping(UUID=uuid, Enabled=False)
    engine.sync()
    aws.put(stream, {"n": 1})
    time.sleep(0.3)
    assert _numbers(invoker.delivered(name)) == [0]
    assert engine.stats() == []
    # Enabled again: resumes from the checkpoint
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert engine.wait_until_idle(10)
    assert _numbers(invoker.delivered(name)) == [0, 1]
    # Updated: the new batch size applies
    lam.update_event_source_mapping(UUID=uuid, BatchSize=2)
    engine.sync()
    aws.put_many(stream, [("k", {"n": i}) for i in range(2, 7)])
    assert engine.wait_until_idle(10)
    assert [len(c.records) for c in invoker.calls_for(name)][-3:] == [2, 2, 1]
    # Deleted: the worker stops
    lam.delete_event_source_mapping(UUID=uuid)
    engine.sync()
    aws.put(stream, {"n": 99})
    time.sleep(0.3)
    assert 99 not in _numbers(invoker.delivered(name))
    assert engine.stats() == []


def test_sqs_mappings_are_ignored(aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory) -> None:
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    _, queue_arn = aws.queue()
    aws.client("lambda").create_event_source_mapping(FunctionName=name, EventSourceArn=queue_arn)
    engine = make_engine()
    assert engine.wait_until_idle(5)
    assert engine.stats() == []
    assert invoker.calls_for(name) == []


def test_a_deleted_stream_does_not_crash_the_engine(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    # Given two mappings, one of whose streams is deleted
    name, *_ = aws.function()
    invoker.register(name, lambda event: None)
    doomed, doomed_arn = aws.stream()
    alive, alive_arn = aws.stream()
    aws.mapping(name, doomed_arn)
    aws.mapping(name, alive_arn)
    engine = make_engine()
    assert engine.wait_until_idle(10)
    aws.client("kinesis").delete_stream(StreamName=doomed)
    time.sleep(0.3)
    # Then the other mapping keeps working
    aws.put(alive, {"n": 1})
    assert engine.wait_until_idle(10)
    assert _numbers(invoker.delivered(name)) == [1]


def test_stats_report_iterator_age_and_counts(
    aws: Aws, invoker: RecordingInvoker, make_engine: EngineFactory
) -> None:
    name, fn_arn, _ = aws.function()
    gate = {"open": False}

    def handler(event: dict[str, object]) -> None:
        while not gate["open"]:
            time.sleep(0.01)

    invoker.register(name, handler)
    stream, stream_arn = aws.stream()
    aws.put_many(stream, [("k", {"n": i}) for i in range(5)])
    uuid = aws.mapping(name, stream_arn, BatchSize=2)["UUID"]
    engine = make_engine()
    # While a batch is stuck, the iterator age grows
    assert wait_for(lambda: any(s.iterator_age_ms >= 300 for s in engine.stats()), timeout=10)
    gate["open"] = True
    assert engine.wait_until_idle(10)
    [stats] = engine.stats()
    assert (stats.mapping_uuid, stats.function_arn, stats.event_source_arn) == (uuid, fn_arn, stream_arn)
    assert stats.shard_id == "shardId-000000000000"
    assert (stats.batches, stats.records, stats.errors, stats.retries) == (3, 5, 0, 0)
    assert stats.iterator_age_ms == 0
    assert stats.last_invoke_duration_ms >= 0


def test_engine_settings_are_only_timings() -> None:
    # Shrinking timings must not need anything but EngineSettings
    engine = MappingEngine("http://127.0.0.1:1", REGION, RecordingInvoker(), settings=EngineSettings())
    assert engine.settings.window_idle_wait_s == 120.0
    assert engine.settings.kinesis_poll_interval_s == 1.0
    assert engine.settings.dynamodb_poll_interval_s == 0.25
    assert FAST.window_idle_wait_s < 1
    assert ACCOUNT == "123456789012"
