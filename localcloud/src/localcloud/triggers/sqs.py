"""SQS event source mappings: poll the queue, invoke with a batch, delete what succeeded.

Only mappings whose EventSourceArn is an SQS queue are handled here; Kinesis and DynamoDB-Streams
mappings belong to the ESM engine (``localcloud.esm``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localcloud.esm.filters import RecordFilter
from localcloud.invocation import FunctionNotFoundError, InvocationResult, Invoker, TooManyRequestsError

LOG = logging.getLogger(__name__)

# Record attributes Lambda passes through from SQS.
_RECORD_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
    "DeadLetterQueueSourceArn",
)
_RECEIVE_WAIT_S = 1  # short long-polls keep stop() responsive


def is_sqs_arn(arn: str) -> bool:
    """True for an SQS queue ARN."""
    return arn.startswith("arn:") and arn.split(":")[2:3] == ["sqs"]


@dataclass(frozen=True)
class SqsMapping:
    """The parts of an SQS event source mapping the poller uses."""

    uuid: str
    function_arn: str
    queue_arn: str
    batch_size: int
    batching_window_s: float
    report_batch_item_failures: bool
    enabled: bool
    # Pollers running at once: ScalingConfig.MaximumConcurrency (capped locally), else 1; always 1
    # for FIFO queues, whose message groups must be processed in order.
    concurrency: int = 1
    # FilterCriteria patterns (JSON text); messages matching none are deleted without an invocation.
    filter_patterns: tuple[str, ...] = ()

    @classmethod
    def from_api(cls, mapping: dict[str, Any]) -> SqsMapping:
        """Build from one ListEventSourceMappings entry."""
        state = mapping.get("State", "Enabled")
        return cls(
            uuid=mapping["UUID"],
            function_arn=mapping["FunctionArn"],
            queue_arn=mapping["EventSourceArn"],
            batch_size=int(mapping.get("BatchSize") or 10),
            batching_window_s=float(mapping.get("MaximumBatchingWindowInSeconds") or 0),
            report_batch_item_failures="ReportBatchItemFailures"
            in (mapping.get("FunctionResponseTypes") or []),
            enabled=state in ("Enabled", "Enabling", "Creating", "Updating"),
            concurrency=_concurrency(mapping),
            filter_patterns=tuple(
                str(f["Pattern"])
                for f in (mapping.get("FilterCriteria") or {}).get("Filters") or []
                if f.get("Pattern")
            ),
        )


_MAX_LOCAL_POLLERS = 10


def _concurrency(mapping: dict[str, Any]) -> int:
    if mapping["EventSourceArn"].endswith(".fifo"):
        return 1
    maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    if not maximum:
        return 1
    return max(1, min(_MAX_LOCAL_POLLERS, int(maximum)))


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message as Lambda's SQS event record."""
    attributes = message.get("Attributes", {})
    message_attributes = {}
    for name, value in message.get("MessageAttributes", {}).items():
        binary = value.get("BinaryValue")
        message_attributes[name] = {
            "stringValue": value.get("StringValue"),
            "binaryValue": base64.b64encode(binary).decode() if isinstance(binary, bytes) else binary,
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType", "String"),
        }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {key: attributes[key] for key in _RECORD_ATTRIBUTES if key in attributes},
        "messageAttributes": message_attributes,
        # Lambda always sends the key: null when the message has no attributes (recorded on AWS).
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_message_ids(result: InvocationResult, batch_ids: list[str], report_failures: bool) -> set[str]:
    """Which messages of the batch failed, by Lambda's rules for SQS.

    A function error fails the batch. With ReportBatchItemFailures, an empty / null response or
    list is full success; an entry without a valid itemIdentifier of this batch fails the batch.
    """
    if not result.ok:
        return set(batch_ids)
    if not report_failures:
        return set()
    payload = result.payload
    if payload is None or payload == {}:
        return set()
    if not isinstance(payload, dict):
        return set()
    failures = payload.get("batchItemFailures")
    if not failures:
        return set()
    if not isinstance(failures, list):
        return set(batch_ids)
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)
        failed.add(identifier)
    return failed


class SqsMappingPoller:
    """Drives one SQS mapping on its own thread."""

    def __init__(self, mapping: SqsMapping, invoker: Invoker, sqs_client: Any, region: str) -> None:
        self.mapping = mapping
        self._invoker = invoker
        self._sqs = sqs_client
        self._region = region
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._queue_url: str | None = None
        self._thread = threading.Thread(target=self._loop, name=f"sqs-esm-{mapping.uuid[:8]}", daemon=True)
        self.invocations = 0
        self.deleted = 0
        self._filter: RecordFilter | None = None

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after its current receive or batch."""
        self._stop.set()

    def stop(self) -> None:
        """Stop polling and wait for the thread."""
        self._stop.set()
        self._thread.join(timeout=_RECEIVE_WAIT_S + 5)

    @property
    def busy(self) -> bool:
        """True while a batch is being gathered or processed."""
        return self._busy.is_set()

    def queue_url(self) -> str:
        """The queue's URL (looked up once)."""
        if self._queue_url is None:
            _, _, _, _, account, name = self.mapping.queue_arn.split(":", 5)
            self._queue_url = self._sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)[
                "QueueUrl"
            ]
        return self._queue_url

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:
                LOG.exception("SQS mapping %s failed to poll", self.mapping.uuid)
                self._busy.clear()
                self._stop.wait(1.0)

    def poll_once(self) -> int:
        """Gather one batch and process it; returns the number of messages handled."""
        batch = self._gather()
        if not batch:
            return 0
        try:
            self._process(batch)
        finally:
            self._busy.clear()
        return len(batch)

    def _receive(self, max_messages: int, wait_s: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url(),
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=wait_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _gather(self) -> list[dict[str, Any]]:
        mapping = self.mapping
        first = self._receive(mapping.batch_size, _RECEIVE_WAIT_S)
        if not first:
            return []
        self._busy.set()
        batch = list(first)
        window_ends = time.monotonic() + mapping.batching_window_s
        while len(batch) < mapping.batch_size and not self._stop.is_set():
            if mapping.batching_window_s <= 0:
                # No window: take what is immediately available, up to the batch size.
                more = self._receive(mapping.batch_size - len(batch), 0)
                if not more:
                    break
            else:
                remaining = window_ends - time.monotonic()
                if remaining <= 0:
                    break
                more = self._receive(
                    mapping.batch_size - len(batch), min(_RECEIVE_WAIT_S, max(0, int(remaining)))
                )
                if not more:
                    if remaining < 1:
                        self._stop.wait(min(remaining, 0.1))
                    continue
            batch.extend(more)
        # A message whose visibility timeout ran out while the window was open comes back with a new
        # receipt handle; keep it once, with the newest handle.
        unique: dict[str, dict[str, Any]] = {}
        for message in batch:
            unique[message["MessageId"]] = message
        return list(unique.values())

    def _process(self, batch: list[dict[str, Any]]) -> None:
        mapping = self.mapping
        if mapping.filter_patterns:
            # Lambda deletes the messages no filter matches, without invoking the function.
            kept = [m for m in batch if self._matches(m)]
            self._delete([m for m in batch if m not in kept])
            batch = kept
            if not batch:
                return
        event = {"Records": [sqs_record(m, mapping.queue_arn, self._region) for m in batch]}
        try:
            result = self._invoker.invoke(mapping.function_arn, event)
        except (TooManyRequestsError, FunctionNotFoundError) as exc:
            # The messages stay in flight and come back after the visibility timeout, as on AWS.
            LOG.info("SQS mapping %s could not invoke %s: %s", mapping.uuid, mapping.function_arn, exc)
            self._stop.wait(0.5)
            return
        self.invocations += 1
        ids = [m["MessageId"] for m in batch]
        failed = failed_message_ids(result, ids, mapping.report_batch_item_failures)
        succeeded = [m for m in batch if m["MessageId"] not in failed]
        self._delete(succeeded)

    def _matches(self, message: dict[str, Any]) -> bool:
        if self._filter is None:
            self._filter = RecordFilter(list(self.mapping.filter_patterns))
        record = sqs_record(message, self.mapping.queue_arn, self._region)
        # A JSON body is matched as an object ("body": {...} patterns); any other body as text.
        with contextlib.suppress(ValueError):
            record["body"] = json.loads(record["body"])
        return self._filter.matches(record)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url(),
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.deleted += len(chunk)


class SqsTrigger:
    """Keeps pollers for each enabled SQS mapping, in step with ListEventSourceMappings."""

    def __init__(self, invoker: Invoker, client: Callable[[str], Any], region: str) -> None:
        self._invoker = invoker
        self._client = client
        self._region = region
        self._pollers: dict[str, list[SqsMappingPoller]] = {}
        self._lock = threading.Lock()

    def sync(self) -> None:
        """Start pollers for new or changed mappings and stop those for removed or disabled ones."""
        wanted: dict[str, SqsMapping] = {}
        paginator = self._client("lambda").get_paginator("list_event_source_mappings")
        for page in paginator.paginate():
            for entry in page.get("EventSourceMappings", []):
                if not is_sqs_arn(entry.get("EventSourceArn", "")):
                    continue
                mapping = SqsMapping.from_api(entry)
                if mapping.enabled:
                    wanted[mapping.uuid] = mapping
        with self._lock:
            for uuid in list(self._pollers):
                running = self._pollers[uuid]
                if wanted.get(uuid) != running[0].mapping:
                    for poller in running:
                        poller.request_stop()
                    for poller in running:
                        poller.stop()
                    del self._pollers[uuid]
            for uuid, mapping in wanted.items():
                if uuid not in self._pollers:
                    pollers = [
                        SqsMappingPoller(mapping, self._invoker, self._client("sqs"), self._region)
                        for _ in range(mapping.concurrency)
                    ]
                    self._pollers[uuid] = pollers
                    for poller in pollers:
                        poller.start()

    @property
    def pollers(self) -> list[SqsMappingPoller]:
        """The running pollers."""
        with self._lock:
            return [poller for pollers in self._pollers.values() for poller in pollers]

    def idle(self) -> bool:
        """True when no poller is mid-batch and the mapped queues hold no messages.

        Messages in flight count as work: they are either being processed or waiting out their
        visibility timeout before a retry.
        """
        for poller in self.pollers:
            if poller.busy:
                return False
            attributes = poller._sqs.get_queue_attributes(
                QueueUrl=poller.queue_url(),
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if int(attributes.get("ApproximateNumberOfMessages", "0")) or int(
                attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
            ):
                return False
        return True

    def stop(self) -> None:
        """Stop every poller."""
        with self._lock:
            running, self._pollers = list(self._pollers.values()), {}
        everything = [poller for pollers in running for poller in pollers]
        # Signal all first: each may sit in a long poll, and they can all wait it out together.
        for poller in everything:
            poller.request_stop()
        for poller in everything:
            poller.stop()
