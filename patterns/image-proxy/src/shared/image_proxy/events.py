"""S3 ``ObjectCreated`` notifications as they reach a function through SNS."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class ObjectCreated:
    """One object S3 says was created."""

    bucket: str
    key: str  # decoded (S3 sends keys URL-encoded, spaces as '+')
    size: int
    etag: str
    event_time: str  # ISO 8601, as S3 wrote it


def objects_created(event: dict[str, Any]) -> list[ObjectCreated]:
    """The created objects in an SNS event carrying S3 notifications (S3's test event has none)."""
    found: list[ObjectCreated] = []
    for record in event.get("Records") or []:
        message = json.loads(record.get("Sns", {}).get("Message") or "{}")
        for s3_record in message.get("Records") or []:
            if not str(s3_record.get("eventName", "")).startswith("ObjectCreated:"):
                continue
            s3 = s3_record["s3"]
            found.append(
                ObjectCreated(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(s3["object"]["key"]),
                    size=int(s3["object"].get("size", 0)),
                    etag=str(s3["object"].get("eTag", "")),
                    event_time=str(s3_record.get("eventTime", "")),
                )
            )
    return found
