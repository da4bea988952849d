"""Tiny handlers behind the API Gateway tests (run in process by the tests' stand-in runtime)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

# A 1x1 PNG's first bytes: not valid UTF-8, so it must travel base64-encoded.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answers with the event it received, plus a repeated header and a cookie."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Handler": "echo"},
        "multiValueHeaders": {"X-Repeated": ["one", "two"]},
        "body": json.dumps(event),
        "isBase64Encoded": False,
    }


def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raises, as a handler with a bug does."""
    raise ValueError("the handler is broken")


def malformed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns something that is not a proxy response (an unexpected key, a non-string body)."""
    return {"statusCode": 200, "body": {"not": "a string"}, "unexpected": True}


def plain(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns a plain object without statusCode."""
    return {"hello": "world", "items": [1, 2]}


def timed_out(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Runs past the function's timeout (the stand-in runtime reports it as a timeout)."""
    raise TimeoutError("Task timed out after 5.00 seconds")


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Takes longer than its route's integration timeout."""
    time.sleep(1.0)
    return {"statusCode": 200, "body": "late"}


def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Returns a binary body, base64-encoded."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(PNG).decode("ascii"),
        "isBase64Encoded": True,
    }
