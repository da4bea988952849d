"""Quarantine: where records that can never succeed go, with their payload and the reason.

Lambda's on-failure destination only receives sequence-number ranges, and a record reported as a
batch item failure drags every record after it through each retry. A record that can never be
processed (bad JSON, wrong types, a record too large once decoded) is therefore sent here by the
handler itself and not retried; the queue is the same one the event source mapping uses as its
on-failure destination, so operators watch one place.

One Kinesis record can hold thousands of bad messages (a KPL aggregate, a compressed batch), and a
synchronous SendMessage each would time the function out. So poison is parked in batches
(SendMessageBatch: up to 10 entries and 256 KiB per call), and a record parks at most
:data:`MAX_PARKED_PER_RECORD` of its messages one by one; the rest go as one more entry holding the
whole record (see :func:`cap_poison`).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson

from leaderboard.retry import RetryPolicy

# A payload is cut here (its size and SHA-256 say what it was); the body is then cut further if its
# encoding (base64, JSON escapes) would still not fit in one SQS message.
MAX_PAYLOAD_BYTES = 200 * 1024
# SQS: one message body, and all the bodies of one SendMessageBatch call together, at most 256 KiB.
MAX_MESSAGE_BYTES = 256 * 1024
MAX_BATCH_REQUEST_BYTES = 256 * 1024
MAX_BATCH_ENTRIES = 10
# Messages of one record parked one by one; the rest of that record is parked as one whole-record
# entry. 100 show operators what went wrong; thousands more only cost SQS calls and time.
MAX_PARKED_PER_RECORD = 100
# Reasons come from validation errors; bounded so that they never crowd out the payload.
MAX_REASON_CHARS = 2000
# Entries SQS refused for its own reasons (not the sender's) are retried this way, then the call
# raises and the caller reports the record as failed, so the mapping retries it.
DEFAULT_RETRY = RetryPolicy(base_delay=0.05, max_delay=1.0, max_attempts=5)


class QuarantineError(RuntimeError):
    """The failure queue did not take every entry: the caller must report the record as failed."""


@dataclass(frozen=True)
class PoisonRecord:
    """A record (or one message of it) that failed validation, and where it came from."""

    payload: bytes
    reason: str
    source: str  # e.g. "kinesis"
    event_source_arn: str
    partition_key: str
    sequence_number: str
    sub_sequence: int | None = None
    # On the whole-record entry that stands for the messages of a record past the per-record cap:
    # how many malformed messages it stands for.
    more_malformed: int | None = None


def cap_poison(
    poison: Sequence[PoisonRecord],
    whole_record: PoisonRecord,
    malformed: int,
    cap: int = MAX_PARKED_PER_RECORD,
) -> list[PoisonRecord]:
    """What to park for one record: its first ``cap`` poison messages, then one whole-record entry.

    ``malformed`` is how many malformed messages the record held in all (the caller keeps only the
    first ``cap`` of them in ``poison``, so thousands are never built). Past the cap,
    ``whole_record`` (the record's full data) is added with the reason
    ``"N more malformed messages in this record"``.
    """
    parked = list(poison[:cap])
    more = malformed - len(parked)
    if more > 0:
        parked.append(
            replace(
                whole_record,
                reason=f"{more} more malformed messages in this record",
                sub_sequence=None,
                more_malformed=more,
            )
        )
    return parked


def _payload_text(kept: bytes, truncated: bool) -> tuple[str, str]:
    """The kept payload as (text, encoding): UTF-8 when it is, else base64."""
    try:
        return kept.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        # A cut through the last character of UTF-8 text: keep the text up to it.
        if truncated and exc.start >= len(kept) - 3 and exc.reason == "unexpected end of data":
            return kept[: exc.start].decode("utf-8"), "utf-8"
        return base64.b64encode(kept).decode("ascii"), "base64"


def _body(record: PoisonRecord, quarantined_at: str, keep: int) -> bytes:
    payload = record.payload
    text, encoding = _payload_text(payload[:keep], len(payload) > keep)
    body: dict[str, Any] = {
        "quarantinedAt": quarantined_at,
        "reason": record.reason[:MAX_REASON_CHARS],
        "source": record.source,
        "eventSourceARN": record.event_source_arn,
        "partitionKey": record.partition_key,
        "sequenceNumber": record.sequence_number,
        "subSequenceNumber": record.sub_sequence,
        "payload": text,
        "payloadEncoding": encoding,
        "payloadBytes": len(payload),
        "payloadSha256": hashlib.sha256(payload).hexdigest(),
        "truncated": len(payload) > keep,
        "moreMalformedMessages": record.more_malformed,
    }
    return orjson.dumps(body)


def quarantine_body(record: PoisonRecord, now: datetime | None = None) -> str:
    """The JSON body sent to the failure queue for one poison record; always fits one SQS message.

    The payload is kept whole up to ``MAX_PAYLOAD_BYTES``; past that, or if its encoding (base64
    for binary data, JSON escapes) would not fit in 256 KiB, it is cut and ``truncated`` is true —
    ``payloadBytes`` and ``payloadSha256`` always describe the whole payload.
    """
    quarantined_at = (now or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
    keep = MAX_PAYLOAD_BYTES
    while True:
        body = _body(record, quarantined_at, keep)
        if len(body) <= MAX_MESSAGE_BYTES or keep == 0:
            return body.decode()
        # Every kept byte costs at least one byte of body, so cutting the excess (and a little
        # more) converges in a step or two, even for base64 (4/3) or escaped control bytes (6x).
        keep = max(0, keep - (len(body) - MAX_MESSAGE_BYTES) - 1024)


def batch_requests(bodies: Sequence[str]) -> Iterator[list[dict[str, str]]]:
    """SendMessageBatch entry lists for ``bodies``, in order: each within 10 entries and 256 KiB."""
    entries: list[dict[str, str]] = []
    size = 0
    for index, body in enumerate(bodies):
        body_bytes = len(body.encode())
        if entries and (len(entries) == MAX_BATCH_ENTRIES or size + body_bytes > MAX_BATCH_REQUEST_BYTES):
            yield entries
            entries, size = [], 0
        entries.append({"Id": str(index), "MessageBody": body})
        size += body_bytes
    if entries:
        yield entries


class SqsQuarantine:
    """Sends poison records to an SQS queue, in batches."""

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        retry: RetryPolicy = DEFAULT_RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """Send to ``queue_url`` with ``sqs_client`` (boto3); retry refused entries per ``retry``."""
        self._sqs = sqs_client
        self._queue_url = queue_url
        self._retry = retry
        self._sleep = sleep

    def send(self, records: PoisonRecord | Sequence[PoisonRecord]) -> None:
        """Quarantine one record or several (SendMessageBatch, as few calls as SQS's limits allow).

        Raises when SQS refuses (the call, or an entry after its retries), so the caller reports
        the record as failed instead and the mapping retries it: nothing is lost, though entries
        already parked may then be parked again.
        """
        batch = [records] if isinstance(records, PoisonRecord) else records
        for entries in batch_requests([quarantine_body(record) for record in batch]):
            self._send_batch(entries)

    def _send_batch(self, entries: list[dict[str, str]]) -> None:
        """One SendMessageBatch call, then the entries SQS refused for its own reasons, again."""
        pending = entries
        attempt = 1
        while True:
            response = self._sqs.send_message_batch(QueueUrl=self._queue_url, Entries=pending)
            failed = response.get("Failed") or []
            if not failed:
                return
            codes = sorted({str(f.get("Code")) for f in failed})
            if any(f.get("SenderFault") for f in failed):
                raise QuarantineError(f"the failure queue refused {len(failed)} entries: {codes}")
            refused = {f["Id"] for f in failed}
            pending = [entry for entry in pending if entry["Id"] in refused]
            limit = self._retry.max_attempts
            if limit is not None and attempt >= limit:
                raise QuarantineError(
                    f"the failure queue refused {len(pending)} entries {attempt} times: {codes}"
                )
            self._sleep(self._retry.backoff(attempt))
            attempt += 1
