"""DynamoDB Streams records carry binary attributes as base64 text, as Lambda's JSON events do."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import boto3
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from localcloud.esm import moto_compat
from localcloud.esm.records import dynamodb_record
from moto import mock_aws

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-21T00:00:00.000"


def test_binary_attributes_are_base64_in_the_event() -> None:
    raw = {
        "eventID": "0" * 32,
        "eventName": "MODIFY",
        "dynamodb": {
            "ApproximateCreationDateTime": datetime(2026, 11, 21, tzinfo=UTC),
            "Keys": {"pk": {"S": "a"}},
            "NewImage": {
                "pk": {"S": "a"},
                "blob": {"B": b"\x00\xffdata"},
                "set": {"BS": [b"\x01", b"\x02"]},
                "nested": {"M": {"inner": {"B": b"\x03"}, "list": {"L": [{"B": b"\x04"}]}}},
            },
            "SequenceNumber": "100",
            "SizeBytes": 30,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    event = dynamodb_record(raw, "shardId-1", ARN, "us-east-1").event
    json.dumps(event)  # a Lambda event is JSON
    image = event["dynamodb"]["NewImage"]
    assert base64.b64decode(image["blob"]["B"]) == b"\x00\xffdata"
    assert [base64.b64decode(v) for v in image["set"]["BS"]] == [b"\x01", b"\x02"]
    assert base64.b64decode(image["nested"]["M"]["inner"]["B"]) == b"\x03"
    assert base64.b64decode(image["nested"]["M"]["list"]["L"][0]["B"]) == b"\x04"
    DynamoDBStreamModel.model_validate({"Records": [event]})


def test_shard_lookups_stay_correct_with_the_sorted_index() -> None:
    # GetRecords and the last sequence number are served from a sorted key index (O(log n)).
    moto_compat.apply()
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="s", ShardCount=1)
        shard = kinesis.list_shards(StreamName="s")["Shards"][0]["ShardId"]
        sequence_numbers = []
        for batch in range(3):
            result = kinesis.put_records(
                StreamName="s",
                Records=[{"Data": f"{batch}-{i}".encode(), "PartitionKey": "k"} for i in range(7)],
            )
            sequence_numbers += [r["SequenceNumber"] for r in result["Records"]]
        assert [int(s) for s in sequence_numbers] == sorted(int(s) for s in sequence_numbers)
        iterator = kinesis.get_shard_iterator(
            StreamName="s",
            ShardId=shard,
            ShardIteratorType="AFTER_SEQUENCE_NUMBER",
            StartingSequenceNumber=sequence_numbers[4],
        )["ShardIterator"]
        page = kinesis.get_records(ShardIterator=iterator, Limit=5)
        assert [r["SequenceNumber"] for r in page["Records"]] == sequence_numbers[5:10]
        page = kinesis.get_records(ShardIterator=page["NextShardIterator"], Limit=100)
        assert [r["SequenceNumber"] for r in page["Records"]] == sequence_numbers[10:]
        kinesis.put_record(StreamName="s", Data=b"late", PartitionKey="k")
        page = kinesis.get_records(ShardIterator=page["NextShardIterator"], Limit=100)
        assert [r["Data"] for r in page["Records"]] == [b"late"]
