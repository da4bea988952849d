"""Control-plane validation of CreateEventSourceMapping, as recorded on AWS (test_api.snapshot.json).

For each source kind the recording tried an invalid StartingPosition, a timestamp with LATEST and a
negative AT_TIMESTAMP; localcloud (moto plus localcloud's mapping API patches) must answer with the
same error codes, messages and HTTP status.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from esm_support import Aws, aws, moto_endpoint
from fidelity import replay
from fidelity.normalise import Normaliser, error_facts
from fidelity.scoreboard import compare

__all__ = ["aws", "moto_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SCENARIO = "api::TestLambdaEventSourceMappings::test_create_starting_position_validation_exceptions"


def _source(aws: Aws, kind: str, norm: Normaliser) -> str:
    if kind == "kinesis":
        return replay.stream(aws)[1]
    if kind == "sqs":
        return replay.queue(aws)[2]
    table, arn = aws.table()
    # The recording kept its table name and stream label verbatim in one message.
    norm.literal(table, "table-36060751")
    norm.literal(arn.rsplit("/", 1)[1], "2025-02-17T16:33:01.784")
    return arn


@pytest.mark.parametrize("kind", ["kinesis", "dynamodb", "sqs"])
def test_create_starting_position_validation_exceptions(kind: str, aws: Aws) -> None:
    norm = Normaliser()
    source = _source(aws, kind, norm)
    fn = replay.function(aws, replay.role(aws))
    client = aws.client("lambda")
    epoch = int(time.time())
    attempts: dict[str, dict[str, Any]] = {
        "create_invalid_starting_position_param": {"StartingPosition": "0"},
        "create_invalid_timestamp_with_starting_position_param": {
            "StartingPosition": "LATEST",
            "StartingPositionTimestamp": epoch,
        },
        "create_negative_starting_position_timestamp_param": {
            "StartingPosition": "AT_TIMESTAMP",
            "StartingPositionTimestamp": -epoch,
        },
    }
    observed: dict[str, Any] = {}
    for label, params in attempts.items():
        with pytest.raises(client.exceptions.ClientError) as error:
            client.create_event_source_mapping(FunctionName=fn, EventSourceArn=source, **params)
        observed[label] = norm(error_facts(error.value))
    compare(f"{SCENARIO}[{kind}]", observed)
