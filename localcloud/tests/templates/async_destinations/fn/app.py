"""Handlers for the asynchronous invocation tests."""

import json
import os
import time
import uuid
from typing import Any


def slow(event: dict[str, Any], context: Any) -> dict[str, str]:
    """Take a while (so a burst is throttled), then record the event."""
    time.sleep(0.2)
    path = os.path.join(os.environ["RECORD_DIR"], f"slow-{uuid.uuid4().hex}.json")
    with open(path, "w", encoding="utf-8") as out:
        json.dump(event, out)
    return {"handled": "yes"}


def failing(event: dict[str, Any], context: Any) -> None:
    """Always fail."""
    raise RuntimeError("this function always fails")
