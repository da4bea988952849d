"""Unit tests (no server) for the engine's building blocks: response rules, windows, tracker, config."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from localcloud.esm.checkpoint import CheckpointStore, ShardCheckpoint
from localcloud.esm.config import MappingConfig, SourceKind, source_kind
from localcloud.esm.destination import failure_record
from localcloud.esm.records import StreamRecord, iso_millis, iso_seconds
from localcloud.esm.sender import Verdict, interpret
from localcloud.esm.windows import Window, state_size, window_start
from localcloud.esm.worker import CompletionTracker
from localcloud.invocation import InvocationResult

STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/s"
TABLE_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2024-06-10T19:26:16.525"


def _records(*seqs: int) -> list[StreamRecord]:
    return [StreamRecord("shardId-000000000000", str(s), 1_700_000_000.0 + s, "k", {}, 10) for s in seqs]


def _ok(payload: Any) -> InvocationResult:
    return InvocationResult(request_id="r", payload=payload)


def _verdict(payload: Any, *, report: bool = True, windowed: bool = False) -> tuple[Verdict, int]:
    batch = _records(10, 11, 12)
    outcome = interpret(_ok(payload), batch, report_batch_item_failures=report, windowed=windowed)
    return outcome.verdict, outcome.failed_from


def test_function_error_fails_the_whole_batch() -> None:
    failed = InvocationResult(request_id="r", payload={"errorMessage": "x"}, function_error="Unhandled")
    outcome = interpret(failed, _records(1), report_batch_item_failures=True, windowed=False)
    assert outcome.verdict is Verdict.FUNCTION_ERROR


@pytest.mark.parametrize("payload", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
def test_success_responses(payload: Any) -> None:
    assert _verdict(payload) == (Verdict.SUCCESS, 0)


def test_lowest_failed_identifier_wins() -> None:
    payload = {"batchItemFailures": [{"itemIdentifier": "12"}, {"itemIdentifier": "11"}]}
    assert _verdict(payload) == (Verdict.PARTIAL_FAILURE, 1)


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "10"}]},
        {"batchItemFailures": [{"itemIdentifier": "99"}]},
        {"batchItemFailures": [{"itemIdentifier": 10}]},
        {"batchItemFailures": ["10"]},
        {"batchItemFailures": {"itemIdentifier": "10"}},
        [1, 2],
        "text",
    ],
)
def test_whole_batch_failures(payload: Any) -> None:
    assert _verdict(payload)[0] is Verdict.BATCH_FAILURE


def test_payload_ignored_without_report_batch_item_failures() -> None:
    assert _verdict({"batchItemFailures": [{"itemIdentifier": "10"}]}, report=False)[0] is Verdict.SUCCESS
    assert _verdict("anything", report=False)[0] is Verdict.SUCCESS


@pytest.mark.parametrize(
    ("payload", "verdict"),
    [
        ({"state": {"a": 1}}, Verdict.SUCCESS),
        ({"state": None}, Verdict.SUCCESS),
        (json.dumps({"state": {}}), Verdict.SUCCESS),
        (None, Verdict.BATCH_FAILURE),
        ({}, Verdict.BATCH_FAILURE),
        ({"state": [1]}, Verdict.BATCH_FAILURE),
        ({"state": {}, "batchItemFailures": [{"itemIdentifier": "11"}]}, Verdict.PARTIAL_FAILURE),
    ],
)
def test_window_responses_need_state(payload: Any, verdict: Verdict) -> None:
    assert _verdict(payload, windowed=True)[0] is verdict


@given(t=st.floats(min_value=0, max_value=4e9, allow_nan=False), size=st.integers(1, 900))
def test_window_start_is_epoch_aligned_and_contains_t(t: float, size: int) -> None:
    start = window_start(t, size)
    assert start % size == 0
    assert start <= t < start + size


def test_window_fields_and_late_records() -> None:
    window = Window(window_start(1_607_497_475.0, 120), 120)
    fields = window.event_fields("shardId-1", STREAM, final=False, early=False)
    assert fields["window"] == {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"}
    assert fields["state"] == {} and fields["isFinalInvokeForWindow"] is False
    assert window.contains(window.start + 119.9) and window.contains(window.start - 500)
    assert not window.contains(window.end)
    assert Window.from_json(json.loads(json.dumps(window.to_json()))) == window
    assert state_size({"a": "x" * 10}) == len('{"a":"xxxxxxxxxx"}')


def test_iso_formats() -> None:
    assert iso_seconds(1_573_691_886.021) == "2019-11-14T00:38:06Z"
    assert iso_millis(1_573_691_886.021) == "2019-11-14T00:38:06.021Z"


@given(st.integers(1, 60), st.randoms(use_true_random=False))
def test_tracker_low_water_is_the_resolved_prefix(count: int, rnd: random.Random) -> None:
    tracker = CompletionTracker()
    for seq in range(1, count + 1):
        tracker.add(seq)
    order = list(range(1, count + 1))
    rnd.shuffle(order)
    resolved: set[int] = set()
    for seq in order:
        tracker.resolve([seq])
        resolved.add(seq)
        prefix = 0
        while prefix + 1 in resolved:
            prefix += 1
        assert tracker.low_water() == (prefix or None)
    assert tracker.outstanding() == 0


def test_config_fills_aws_defaults() -> None:
    config = MappingConfig.from_api(
        {"UUID": "u", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:f", "EventSourceArn": STREAM}
    )
    assert config is not None
    assert config.kind is SourceKind.KINESIS
    assert (config.batch_size, config.maximum_batching_window_s) == (100, 0)
    assert config.starting_position == "TRIM_HORIZON"
    assert (config.maximum_retry_attempts, config.maximum_record_age_s) == (-1, -1)
    assert config.parallelization_factor == 1
    assert not config.bisect_on_error and not config.report_batch_item_failures
    assert config.tumbling_window_s == 0 and config.on_failure_destination is None and config.enabled


def test_config_reads_every_parameter() -> None:
    config = MappingConfig.from_api(
        {
            "UUID": "u",
            "FunctionArn": "arn:aws:lambda:us-east-1:1:function:f",
            "EventSourceArn": TABLE_STREAM,
            "State": "Disabled",
            "BatchSize": 7,
            "MaximumBatchingWindowInSeconds": 2,
            "StartingPosition": "LATEST",
            "ParallelizationFactor": 3,
            "MaximumRetryAttempts": 4,
            "MaximumRecordAgeInSeconds": 60,
            "BisectBatchOnFunctionError": True,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "TumblingWindowInSeconds": 30,
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:1:q"}},
            "FilterCriteria": {"Filters": [{"Pattern": "{}"}]},
        }
    )
    assert config is not None and config.kind is SourceKind.DYNAMODB and not config.enabled
    assert (config.batch_size, config.maximum_batching_window_s, config.parallelization_factor) == (7, 2, 3)
    assert (config.maximum_retry_attempts, config.maximum_record_age_s) == (4, 60)
    assert config.tumbling_window_s == 30
    assert config.bisect_on_error and config.report_batch_item_failures
    assert config.on_failure_destination == "arn:aws:sqs:us-east-1:1:q" and config.filter_patterns == ("{}",)
    assert config.stream_name == "T"


def test_only_stream_sources_are_handled() -> None:
    assert source_kind("arn:aws:sqs:us-east-1:1:q") is None
    assert source_kind("arn:aws:kinesis:us-east-1:1:stream/s/consumer/c:1") is None
    assert source_kind(STREAM) is SourceKind.KINESIS
    assert source_kind(TABLE_STREAM) is SourceKind.DYNAMODB


def test_checkpoints_persist_atomically_and_reload(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, "uuid-1", STREAM)
    store.put("shardId-0", ShardCheckpoint(sequence="42", window={"start": 60, "size_s": 60}))
    store.put("shardId-1", ShardCheckpoint(finished=True))
    files = list((tmp_path / "esm-checkpoints").iterdir())
    assert [f.name for f in files] == ["uuid-1.json"]
    again = CheckpointStore(tmp_path, "uuid-1", STREAM)
    assert again.get("shardId-0") == ShardCheckpoint(sequence="42", window={"start": 60, "size_s": 60})
    assert again.is_finished("shardId-1") and again.known("shardId-0") and not again.known("shardId-9")
    # A file written for another source is not trusted
    other = CheckpointStore(tmp_path, "uuid-1", "arn:aws:kinesis:us-east-1:1:stream/other")
    assert other.get("shardId-0") is None


def test_failure_record_shape_for_dynamodb() -> None:
    config = MappingConfig.from_api(
        {"UUID": "u", "FunctionArn": "arn:aws:lambda:us-east-1:1:function:f", "EventSourceArn": TABLE_STREAM}
    )
    assert config is not None
    document = failure_record(
        config,
        "shardId-9",
        _records(5, 6),
        condition="RecordAgeExceeded",
        invoke_count=0,
        result=None,
        now=1_573_691_886.021,
    )
    assert list(document) == ["requestContext", "version", "timestamp", "DDBStreamBatchInfo"]
    assert document["timestamp"] == "2019-11-14T00:38:06.021Z"
    info = document["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == ("5", "6", 2)
