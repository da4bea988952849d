"""The image table: one item per image name, written by both functions, read by the API.

Each function sets only its own attributes, so their order does not matter, and each write is
conditional on the upload it describes not being older than what the item already reflects: a
redelivered notification rewrites the same values, a stale one (an earlier upload of a name that was
uploaded again) changes nothing.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from image_proxy.events import ObjectCreated
from image_proxy.images import ImageFacts

HASH_INDEX = "ByHash"


class ImageTable:
    """Writes analysis and thumbnail results to the table through a boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _update(
        self, name: str, source: ObjectCreated, marker: str, values: dict[str, Any], remove: list[str]
    ) -> bool:
        names = {f"#{k}": k for k in values} | {f"#{k}": k for k in remove} | {"#m": marker}
        sets = ", ".join(f"#{k} = :{k}" for k in values)
        expression = f"SET {sets}, #m = :m" + (
            f" REMOVE {', '.join(f'#{k}' for k in remove)}" if remove else ""
        )
        attribute_values = {f":{k}": _attribute(v) for k, v in values.items()} | {
            ":m": {"S": source.event_time}
        }
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                UpdateExpression=expression,
                ConditionExpression="attribute_not_exists(#m) OR #m <= :m",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=attribute_values,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False  # a newer upload of this name is already recorded
            raise
        return True

    def record_analysis(
        self, name: str, source: ObjectCreated, facts: ImageFacts, labels: dict[str, Any] | None = None
    ) -> bool:
        """The analyzer's facts for one upload, and its labels when label detection is on."""
        values: dict[str, Any] = {
            "status": "analysed",
            "size": source.size,
            "uploadedAt": source.event_time,
            "format": facts.format,
            "width": facts.width,
            "height": facts.height,
            "phash": facts.phash,
            "colours": facts.colours,
            "exif": facts.exif,
        }
        if labels is not None:
            values["labels"] = labels
        return self._update(name, source, "analysedFrom", values, ["reason"])

    def record_rejection(self, name: str, source: ObjectCreated, reason: str) -> bool:
        """An upload the analyzer could not accept, with why."""
        values = {
            "status": "rejected",
            "reason": reason,
            "size": source.size,
            "uploadedAt": source.event_time,
        }
        return self._update(name, source, "analysedFrom", values, ["phash", "duplicateOf", "format"])

    def record_thumbnails(self, name: str, source: ObjectCreated, keys: dict[str, str]) -> bool:
        """The thumbnails written for one upload (size -> key)."""
        values = {"thumbnails": keys, "thumbnailStatus": "done"}
        return self._update(name, source, "thumbnailedFrom", values, ["thumbnailReason"])

    def record_thumbnail_refusal(self, name: str, source: ObjectCreated, reason: str) -> bool:
        """No thumbnail for this upload, and why."""
        values = {"thumbnailStatus": "refused", "thumbnailReason": reason}
        return self._update(name, source, "thumbnailedFrom", values, ["thumbnails"])

    def original_of(self, name: str, phash: str, uploaded_at: str) -> str | None:
        """The earliest other image with the same perceptual hash uploaded before this one."""
        earlier: list[tuple[str, str]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": HASH_INDEX,
            "KeyConditionExpression": "phash = :h",
            "ExpressionAttributeValues": {":h": {"S": phash}},
        }
        while True:
            page = self._client.query(**kwargs)
            for item in page.get("Items", []):
                other = (item.get("uploadedAt", {}).get("S", ""), item["name"]["S"])
                if other[1] != name and other < (uploaded_at, name):
                    earlier.append(other)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return min(earlier)[1] if earlier else None

    def record_duplicate(self, name: str, source: ObjectCreated, original: str | None) -> bool:
        """Flag (or unflag) this image as a duplicate of ``original``."""
        if original is None:
            return self._clear_duplicate(name, source)
        return self._update(name, source, "analysedFrom", {"duplicateOf": original}, [])

    def _clear_duplicate(self, name: str, source: ObjectCreated) -> bool:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"name": {"S": name}},
                UpdateExpression="REMOVE duplicateOf",
                ConditionExpression="analysedFrom = :m",
                ExpressionAttributeValues={":m": {"S": source.event_time}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


def _attribute(value: Any) -> dict[str, Any]:
    """A DynamoDB attribute value for the plain values this table stores."""
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): _attribute(v) for k, v in value.items()}}
    return {"S": str(value)}
