"""DynamoDB TTL: expired items are deleted by a background sweep, seen on the stream as the service's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "ttl_basic" / "template.yaml"
SERVICE = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ttl-records")


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(metrics=False, api_gateway=False, iot=False, ttl_sweep_interval_s=0.2) as local:
        yield local


@pytest.fixture(scope="module")
def outputs(cloud: LocalCloud, record_dir: Path) -> dict[str, str]:
    return dict(cloud.deploy(TEMPLATE, "ttl", parameters={"RecordDir": str(record_dir)}).outputs)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def item_exists(cloud: LocalCloud, table: str, pk: str) -> bool:
    return "Item" in cloud.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}})


def recorded(record_dir: Path, pk: str) -> list[dict[str, Any]]:
    records = [json.loads(p.read_text()) for p in record_dir.glob("record-*.json")]
    return [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"] == pk]


def test_the_template_turns_ttl_on(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    # Given a table whose template sets TimeToLiveSpecification, when TTL is described
    description = cloud.client("dynamodb").describe_time_to_live(TableName=outputs["TableName"])

    # Then it is enabled on the template's attribute
    assert description["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expiresAt",
    }


def test_expired_items_go_and_the_rest_stay(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    table, ddb, now = outputs["TableName"], cloud.client("dynamodb"), int(time.time())
    # Given items that expired, will expire much later, carry a non-Number TTL, none, or one
    # more than five years old (DynamoDB ignores those)
    items = {
        "expired": {"expiresAt": {"N": str(now - 10)}},
        "later": {"expiresAt": {"N": str(now + 3600)}},
        "text": {"expiresAt": {"S": str(now - 10)}},
        "none": {},
        "ancient": {"expiresAt": {"N": str(now - 6 * 365 * 24 * 3600)}},
    }
    for pk, attributes in items.items():
        ddb.put_item(TableName=table, Item={"pk": {"S": f"keep-{pk}"}, **attributes})

    # When the sweep runs (every 0.2 s here)
    wait_for(lambda: not item_exists(cloud, table, "keep-expired"))

    # Then only the expired item is gone, and a later sweep keeps the others
    sweeper = cloud.ttl_sweeper
    assert sweeper is not None
    sweeper.sweep()
    for pk in ("later", "text", "none", "ancient"):
        assert item_exists(cloud, table, f"keep-{pk}"), pk


def test_a_ttl_deletion_is_a_remove_record_by_the_service(
    cloud: LocalCloud, outputs: dict[str, str], record_dir: Path
) -> None:
    table, ddb = outputs["TableName"], cloud.client("dynamodb")
    # Given one item that expires and one a caller deletes
    ddb.put_item(
        TableName=table, Item={"pk": {"S": "ttl-gone"}, "expiresAt": {"N": str(int(time.time()) - 1)}}
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "caller-gone"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "caller-gone"}})

    # When their REMOVE records reach the function on the stream
    ttl_remove = wait_for(lambda: [r for r in recorded(record_dir, "ttl-gone") if r["eventName"] == "REMOVE"])
    caller_remove = wait_for(
        lambda: [r for r in recorded(record_dir, "caller-gone") if r["eventName"] == "REMOVE"]
    )

    # Then the TTL deletion carries the service's identity and the old image; the caller's does not
    assert ttl_remove[0]["userIdentity"] == SERVICE
    assert ttl_remove[0]["dynamodb"]["OldImage"]["pk"] == {"S": "ttl-gone"}
    assert "userIdentity" not in caller_remove[0]


def test_get_records_shows_the_service_identity(cloud: LocalCloud, outputs: dict[str, str]) -> None:
    # Given an expired item swept away
    table, ddb = outputs["TableName"], cloud.client("dynamodb")
    ddb.put_item(
        TableName=table, Item={"pk": {"S": "api-gone"}, "expiresAt": {"N": str(int(time.time()) - 1)}}
    )
    wait_for(lambda: not item_exists(cloud, table, "api-gone"))

    # When the stream is read through the DynamoDB Streams API
    streams = cloud.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=outputs["StreamArn"])["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=outputs["StreamArn"], ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]

    # Then the REMOVE record has the API's userIdentity shape
    removes = [
        r for r in records if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["pk"]["S"] == "api-gone"
    ]
    assert removes and removes[0]["userIdentity"] == {
        "Type": "Service",
        "PrincipalId": "dynamodb.amazonaws.com",
    }


def test_update_time_to_live_turns_expiry_on_for_any_table(cloud: LocalCloud) -> None:
    # Given a table created through the API, TTL turned on with UpdateTimeToLive
    ddb = cloud.client("dynamodb")
    ddb.create_table(
        TableName="api-made",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="api-made", Item={"id": {"S": "a"}, "ttl": {"N": str(int(time.time()) - 5)}})
    sweeper = cloud.ttl_sweeper
    assert sweeper is not None
    sweeper.sweep()
    assert "Item" in ddb.get_item(TableName="api-made", Key={"id": {"S": "a"}}), "TTL was still off"

    # When TTL is enabled on its attribute
    ddb.update_time_to_live(
        TableName="api-made", TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
    )

    # Then the expired item goes
    wait_for(lambda: "Item" not in ddb.get_item(TableName="api-made", Key={"id": {"S": "a"}}))


def test_no_sweep_when_switched_off() -> None:
    # Given a cloud without the sweep, its sweeper is absent
    cloud = LocalCloud(metrics=False, api_gateway=False, iot=False, ttl_sweep_interval_s=None)
    assert cloud.ttl_sweeper is None
