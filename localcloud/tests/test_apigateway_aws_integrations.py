"""REST API ``aws`` integrations to S3 (path style) and DynamoDB (action style), through LocalCloud
over real HTTP: parameter mapping, VTL mapping templates, passthrough behaviour, binary media types,
request validation and the integration role's policy, checked on every call."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "apigateway_aws" / "template.yaml"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))  # not UTF-8: only a binary path keeps it whole

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, str, dict[str, Any]]]:
    with LocalCloud() as cloud:
        result = cloud.deploy(TEMPLATE, "awsint")
        yield cloud, cloud.api_gateway.local_url(result.outputs["ApiUrl"]), result.outputs


def test_put_maps_path_and_headers_to_s3_and_binary_arrives_whole(stack):
    cloud, url, outputs = stack
    # When a PNG is PUT with its binary media type
    answer = requests.put(f"{url}/files/a.png", data=PNG, headers={"Content-Type": "image/png"}, timeout=30)

    # Then the default integration response answers, with its mapped and static headers
    assert answer.status_code == 201
    assert answer.json() == {"stored": "a.png", "stage": "v1"}
    assert answer.headers["X-Stored-As"] == "file"
    stored = cloud.client("s3").get_object(Bucket=outputs["FilesBucket"], Key="a.png")
    assert answer.headers["ETag"] == stored["ETag"]
    # And S3 holds the bytes as sent, with the mapped Content-Type and the context value as metadata
    assert stored["Body"].read() == PNG
    assert stored["ContentType"] == "image/png"
    assert answer.headers["x-amzn-RequestId"] == stored["Metadata"]["request"]

    # And a GET maps S3's Content-Type through and returns the bytes unchanged
    fetched = requests.get(f"{url}/files/a.png", timeout=30)
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.content == PNG


def test_request_validation_and_passthrough_never_refuse_before_any_write(stack):
    cloud, url, outputs = stack
    # A missing required header is a 400, an unmapped content type a 415 (passthroughBehavior NEVER)
    missing = requests.put(f"{url}/files/b.txt", data=b"hello", timeout=30)
    assert missing.status_code == 400
    assert missing.json() == {"message": "Missing required request parameters: [Content-Type]"}
    unmapped = requests.put(
        f"{url}/files/b.txt", data=b"hello", headers={"Content-Type": "application/pdf"}, timeout=30
    )
    assert unmapped.status_code == 415
    # Nothing was written
    listing = cloud.client("s3").list_objects_v2(Bucket=outputs["FilesBucket"], Prefix="b.")
    assert listing.get("KeyCount", 0) == 0


def test_the_integration_role_is_enforced(stack):
    cloud, url, outputs = stack
    # The role may put only *.png and *.txt keys: S3 refuses others, the 4xx response maps it
    refused = requests.put(
        f"{url}/files/c.exe", data=b"MZ", headers={"Content-Type": "text/plain"}, timeout=30
    )
    assert refused.status_code == 403
    assert refused.json() == {"message": "not allowed: c.exe"}
    s3 = cloud.client("s3")
    assert s3.list_objects_v2(Bucket=outputs["FilesBucket"], Prefix="c.").get("KeyCount", 0) == 0
    # A bucket outside the role's policy is a 403 even for an object that exists
    s3.put_object(Bucket=outputs["ForbiddenBucket"], Key="secret.png", Body=b"x")
    assert requests.get(f"{url}/forbidden/secret.png", timeout=30).status_code == 403
    # DynamoDB actions the role lacks never run: the table survives a DeleteTable integration
    assert requests.get(f"{url}/denied", timeout=30).status_code == 403
    assert outputs["ItemsTable"] in cloud.client("dynamodb").list_tables()["TableNames"]


def test_missing_object_selects_the_404_integration_response(stack):
    _, url, _ = stack
    answer = requests.get(f"{url}/files/nothing.png", timeout=30)
    assert answer.status_code == 404
    assert answer.json() == {"message": "no such file"}


def test_dynamodb_actions_with_request_and_response_templates(stack):
    cloud, url, outputs = stack
    # When an item is saved through a PutItem request template (escaping a quote in the note)
    saved = requests.post(f"{url}/items", json={"id": "i1", "note": 'say "hi"'}, timeout=30)
    assert saved.status_code == 200
    assert saved.json() == {"saved": True}
    item = cloud.client("dynamodb").get_item(TableName=outputs["ItemsTable"], Key={"pk": {"S": "i1"}})["Item"]
    assert item["note"]["S"] == 'say "hi"'
    assert item["by"]["S"] == "127.0.0.1"  # $context.identity.sourceIp

    # Then GetItem's response template returns clean JSON, and $context.responseOverride a 404
    one = requests.get(f"{url}/items/i1", timeout=30)
    assert one.status_code == 200
    assert one.json() == {"id": "i1", "note": 'say "hi"'}
    absent = requests.get(f"{url}/items/nope", timeout=30)
    assert absent.status_code == 404
    assert absent.json() == {"message": "no such item"}

    # And a Scan's template iterates the items
    listing = requests.get(f"{url}/items", timeout=30)
    assert listing.status_code == 200
    assert {"id": "i1", "note": 'say "hi"'} in listing.json()["items"]
