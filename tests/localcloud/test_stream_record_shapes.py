"""DynamoDB Streams records carry binary attributes as base64 text, as Lambda's JSON events do."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from localcloud.esm.records import dynamodb_record

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
