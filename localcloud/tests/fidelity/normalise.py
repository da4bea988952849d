"""Normalise localcloud's observable results the way LocalStack's snapshots normalise AWS's.

Snapshots replace partition, region and account with ``<partition>``, ``<region>`` and
``111111111111``; resource names, UUIDs and sequence numbers with numbered placeholders
(``<resource:1>``, ``<uuid:1>``, ``<sequence-number:1>``) in order of registration; timestamps with
fixed tokens. A :class:`Normaliser` does the same to our values so the two can be compared with
``==``. Names are registered explicitly, in the order the recorded scenario numbers them, because
that order comes from the recording test's transformers and not from the data.
"""

from __future__ import annotations

import re
from typing import Any

ACCOUNT = "123456789012"
SNAPSHOT_ACCOUNT = "111111111111"
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
# The snapshots' timestamp token keeps the value's precision: milliseconds or whole seconds.
TIMESTAMP_TOKEN = "<timestamp:2022-07-13T13:48:01.000Z>"
SECONDS_TIMESTAMP_TOKEN = "<timestamp:2022-07-13T13:48:01Z>"

# Keys whose values the snapshots always replace by a fixed token.
FIXED_TOKENS = {
    "approximateArrivalTimestamp": "<approximate-arrival-timestamp>",
    "ApproximateCreationDateTime": "<approximate-creation-datetime>",
    "LastModified": "<datetime>",
    "MD5OfBody": "<m-d5-of-body:1>",
    "ReceiptHandle": "<receipt-handle:1>",
    "Signature": "<signature>",
}


class Normaliser:
    """Replaces registered values by placeholders, then ARNs' partition/region/account."""

    def __init__(self, region: str = "us-east-1", tokens: dict[str, str] | None = None) -> None:
        self.region = region
        # Older snapshots used other fixed tokens (e.g. LastModified "datetime"); a replay of
        # one passes them here.
        self.tokens = {**FIXED_TOKENS, **(tokens or {})}
        self.values: dict[str, str] = {}
        # Sequence numbers are short digit strings in moto: replaced only as a whole value or as
        # the part after the last ":" (an eventID), never inside another string.
        self.whole: dict[str, str] = {}
        self.counters: dict[str, int] = {}

    def add(self, kind: str, value: str, number: int | None = None) -> str:
        """Register ``value`` as ``<kind:n>`` (next free n unless given); returns the placeholder."""
        table = self.whole if "sequence-number" in kind else self.values
        if value in table:
            return table[value]
        if number is None:
            number = self.counters.get(kind, 0) + 1
        self.counters[kind] = max(self.counters.get(kind, 0), number)
        placeholder = f"<{kind}:{number}>"
        table[value] = placeholder
        return placeholder

    def literal(self, value: str, replacement: str) -> None:
        """Replace ``value`` by a fixed text (for names a snapshot kept verbatim)."""
        self.values[value] = replacement

    def _string(self, text: str) -> str:
        if text in self.whole:
            return self.whole[text]
        head, sep, tail = text.rpartition(":")
        if sep and tail in self.whole:
            return self._string(head) + sep + self.whole[tail]
        # Longest values first so that a name that contains another is replaced whole.
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, self.values[value])
        for match in UUID.findall(text):
            text = text.replace(match, self.add("uuid", match))
        text = text.replace("arn:aws:", "arn:<partition>:")
        text = text.replace(f":{self.region}:", ":<region>:")
        return text.replace(ACCOUNT, SNAPSHOT_ACCOUNT)

    def __call__(self, value: Any, key: str | None = None) -> Any:
        """The normalised copy of ``value`` (dicts and lists walked in order)."""
        if key in self.tokens and value is not None:
            return self.tokens[key]
        if isinstance(value, dict):
            return {k: self(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):
            stamp = ISO_TIMESTAMP.match(value)
            if stamp:
                return TIMESTAMP_TOKEN if stamp.group(1) else SECONDS_TIMESTAMP_TOKEN
            if value == self.region and key in ("awsRegion", "region"):
                return "<region>"
            return self._string(value)
        return value


def response_facts(response: dict[str, Any]) -> dict[str, Any]:
    """A boto3 response as snapshots keep it: HTTP headers dropped, the status code kept."""
    kept = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status is not None:
        kept["ResponseMetadata"] = {"HTTPHeaders": {}, "HTTPStatusCode": status}
    return kept


def error_facts(error: Any) -> dict[str, Any]:
    """A botocore ClientError's response as snapshots keep it (code, message, status)."""
    response = error.response
    facts: dict[str, Any] = {
        "Error": {"Code": response["Error"]["Code"], "Message": response["Error"]["Message"]},
        "ResponseMetadata": {
            "HTTPHeaders": {},
            "HTTPStatusCode": response["ResponseMetadata"]["HTTPStatusCode"],
        },
    }
    return facts
