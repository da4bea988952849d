"""Kinesis mappings: event shape, batching, starting positions, checkpoints, sync and stats."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import KinesisDataStreamModel

from localcloud.esm import EngineSettings, MappingEngine

from .esm_support import (
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
