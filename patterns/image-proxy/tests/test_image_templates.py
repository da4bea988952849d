"""The API's mapping templates, rendered with the VTL engine localcloud uses (API Gateway's
``$input`` / ``$util`` / ``$context``), against DynamoDB answers of the shape the service returns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from localcloud.apigateway.mapping import render
from localcloud.templates import load_template

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"
TABLE = "images-table"
NO_PARAMS: dict[str, dict[str, str]] = {"path": {}, "querystring": {}, "header": {}}


@pytest.fixture(scope="module")
def paths() -> dict[str, Any]:
    api = load_template(TEMPLATE)["Resources"]["ImageApi"]["Properties"]
    return api["DefinitionBody"]["paths"]


def _text(node: Any) -> str:
    """A template string as CloudFormation would produce it (Join of strings, Sub of the table)."""
    if isinstance(node, str):
        return node
    if "Fn::Join" in node:
        separator, parts = node["Fn::Join"]
        return str(separator).join(_text(part) for part in parts)
    if "Fn::Sub" in node:
        return str(node["Fn::Sub"]).replace("${ImageTable}", TABLE)
    raise AssertionError(f"unexpected template node {node!r}")


def _integration(paths: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return paths[path][method]["x-amazon-apigateway-integration"]


def _render_json(template: str, body: Any, params: dict[str, dict[str, str]] | None = None) -> Any:
    output, override = render(
        template, body=json.dumps(body), params=params or NO_PARAMS, context={"requestId": "r-1"}
    )
    return json.loads(output), override


ANALYSED = {
    "name": {"S": 'say "cheese".jpg'},
    "status": {"S": "analysed"},
    "size": {"N": "2048"},
    "uploadedAt": {"S": "2026-05-17T08:30:00.000Z"},
    "format": {"S": "JPEG"},
    "width": {"N": "200"},
    "height": {"N": "320"},
    "phash": {"S": "f0e1d2c3b4a59687"},
    "colours": {"L": [{"S": "#102030"}, {"S": "#fafafa"}]},
    "exif": {"M": {"camera": {"S": "Acme Roadster 3"}, "takenAt": {"S": "2026-05-17T08:30:00"}}},
    "duplicateOf": {"S": "first.jpg"},
    "labels": {
        "M": {"source": {"S": "Amazon Rekognition"}, "names": {"L": [{"S": "Mountain"}, {"S": "Dawn"}]}}
    },
    "thumbnailStatus": {"S": "done"},
    "thumbnails": {"M": {"128": {"S": '128/say "cheese".jpg'}}},
}
REJECTED = {
    "name": {"S": "fake.png"},
    "status": {"S": "rejected"},
    "reason": {"S": "not an image"},
    "size": {"N": "12"},
    "uploadedAt": {"S": "2026-05-17T08:31:00.000Z"},
    "thumbnailStatus": {"S": "refused"},
}


def test_listing_is_clean_json_with_each_analysis_and_a_cursor(paths):
    template = _text(
        _integration(paths, "/images", "get")["responses"]["default"]["responseTemplates"]["application/json"]
    )

    listing, _ = _render_json(
        template, {"Items": [ANALYSED, REJECTED], "LastEvaluatedKey": {"name": {"S": "fake.png"}}}
    )

    first, second = listing["images"]
    assert first["name"] == 'say "cheese".jpg'
    assert (first["format"], first["width"], first["height"], first["size"]) == ("JPEG", 200, 320, 2048)
    assert first["analysis"] == {
        "phash": "f0e1d2c3b4a59687",
        "colours": ["#102030", "#fafafa"],
        "camera": "Acme Roadster 3",
        "takenAt": "2026-05-17T08:30:00",
        "duplicateOf": "first.jpg",
        "labels": {"source": "Amazon Rekognition", "names": ["Mountain", "Dawn"]},
    }
    assert first["thumbnails"] == {"128": '/thumbnails/128/say "cheese".jpg'}
    assert second == {
        "name": "fake.png",
        "status": "rejected",
        "size": 12,
        "uploadedAt": "2026-05-17T08:31:00.000Z",
        "format": None,
        "width": None,
        "height": None,
        "reason": "not an image",
        "analysis": None,
        "thumbnailStatus": "refused",
        "thumbnails": {},
    }
    assert listing["nextCursor"] == "fake.png"
    last_page, _ = _render_json(template, {"Items": []})
    assert last_page == {"images": [], "nextCursor": None}


@pytest.mark.parametrize(
    ("limit", "expected"),
    [("5", 5), ("", 20), ("0", 20), ("1000", 20), ('5, "TableName": "other"', 20)],
)
def test_listing_request_takes_only_a_sane_limit(paths, limit, expected):
    template = _text(_integration(paths, "/images", "get")["requestTemplates"]["application/json"])
    params = {"path": {}, "querystring": {"limit": limit, "cursor": 'a"b.png'}, "header": {}}

    request, _ = _render_json(template, {}, params)

    assert request == {"TableName": TABLE, "Limit": expected, "ExclusiveStartKey": {"name": {"S": 'a"b.png'}}}


def test_one_image_or_a_404(paths):
    integration = _integration(paths, "/images/{name}", "get")
    request_template = _text(integration["requestTemplates"]["application/json"])
    response_template = _text(integration["responses"]["default"]["responseTemplates"]["application/json"])
    params = {"path": {"name": 'say "cheese".jpg'}, "querystring": {}, "header": {}}

    request, _ = _render_json(request_template, {}, params)
    assert request == {"TableName": TABLE, "Key": {"name": {"S": 'say "cheese".jpg'}}}

    found, override = _render_json(response_template, {"Item": ANALYSED}, params)
    assert found["name"] == 'say "cheese".jpg'
    assert found["analysis"]["duplicateOf"] == "first.jpg"
    assert override.status is None
    missing, override = _render_json(response_template, {}, params)
    assert missing == {"message": "no such image"}
    assert override.status == 404


def test_upload_accepts_only_image_types_and_answers_json(paths):
    integration = _integration(paths, "/images/{name}", "put")
    # Only the image types have a template, and nothing passes through without one: others get 415
    assert integration["passthroughBehavior"] == "never"
    assert set(integration["requestTemplates"]) == {"image/jpeg", "image/png", "image/webp", "image/gif"}
    params = {"path": {"name": "cat & dog.png"}, "querystring": {}, "header": {}}
    for response in integration["responses"].values():
        body, _ = _render_json(response["responseTemplates"]["application/json"], {}, params)
        assert isinstance(body, dict)
    accepted, _ = _render_json(
        integration["responses"]["default"]["responseTemplates"]["application/json"], {}, params
    )
    assert accepted == {"name": "cat & dog.png", "status": "uploaded", "image": "/images/cat+%26+dog.png"}
