"""Writes every stream record it receives to RECORD_DIR, one JSON file per record."""

import json
import os
import uuid
from typing import Any


def handler(event: dict[str, Any], context: Any) -> None:
    """Record each record of the batch."""
    for record in event["Records"]:
        path = os.path.join(os.environ["RECORD_DIR"], f"record-{uuid.uuid4().hex}.json")
        with open(path, "w", encoding="utf-8") as out:
            json.dump(record, out)
