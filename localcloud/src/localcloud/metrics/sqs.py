"""AWS/SQS metrics: messages sent, received and deleted from the calls seen on the endpoint, and
queue depths from GetQueueAttributes (dimension ``QueueName``).

Only the JSON protocol is observed (what current SDKs speak); calls in the older query protocol
still work but are not counted.
"""

from __future__ import annotations

import logging
from typing import Any

from localcloud.metrics.aggregate import MetricAggregator, MetricId
from localcloud.metrics.calls import JsonAnswer, JsonCall

NAMESPACE = "AWS/SQS"
OBSERVED = frozenset(
    {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch"}
)
# Queue attribute -> the gauge SQS publishes from it.
DEPTH_ATTRIBUTES = {
    "ApproximateNumberOfMessages": "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}

LOG = logging.getLogger(__name__)


def queue_name(queue_url: str) -> str:
    """The queue's name: the last path segment of its URL."""
    return queue_url.rstrip("/").rsplit("/", 1)[-1]


def _id(name: str, unit: str, queue: str) -> MetricId:
    return MetricId(NAMESPACE, name, (("QueueName", queue),), unit)


class SqsMetrics:
    """Turns one observed SQS call into samples."""

    def __init__(self, sink: MetricAggregator) -> None:
        self._sink = sink

    def observe(self, call: JsonCall, answer: JsonAnswer) -> None:
        """Record the metrics of one call."""
        url = call.request.get("QueueUrl")
        if not isinstance(url, str) or answer.status_code != 200:
            return
        queue = queue_name(url)
        op = call.operation
        body = answer.json()
        samples: list[tuple[MetricId, float]] = []
        if op == "SendMessage":
            size = len(str(call.request.get("MessageBody", "")).encode())
            samples += [(_id("NumberOfMessagesSent", "Count", queue), 1.0)]
            samples += [(_id("SentMessageSize", "Bytes", queue), float(size))]
        elif op == "SendMessageBatch":
            ok = {str(entry.get("Id")) for entry in body.get("Successful", [])}
            samples += [(_id("NumberOfMessagesSent", "Count", queue), float(len(ok)))]
            for entry in call.request.get("Entries", []):
                if str(entry.get("Id")) in ok:
                    size = len(str(entry.get("MessageBody", "")).encode())
                    samples.append((_id("SentMessageSize", "Bytes", queue), float(size)))
        elif op == "ReceiveMessage":
            received = len(body.get("Messages", []))
            samples += [(_id("NumberOfMessagesReceived", "Count", queue), float(received))]
            samples += [(_id("NumberOfEmptyReceives", "Count", queue), 0.0 if received else 1.0)]
        elif op == "DeleteMessage":
            samples += [(_id("NumberOfMessagesDeleted", "Count", queue), 1.0)]
        elif op == "DeleteMessageBatch":
            deleted = len(body.get("Successful", []))
            samples += [(_id("NumberOfMessagesDeleted", "Count", queue), float(deleted))]
        self._sink.add_all(samples)


def sample_queue_depths(sqs: Any, sink: MetricAggregator) -> None:
    """Poll GetQueueAttributes for every queue and record the depth gauges."""
    try:
        urls = sqs.list_queues().get("QueueUrls", [])
    except Exception:
        LOG.debug("ListQueues failed", exc_info=True)
        return
    samples: list[tuple[MetricId, float]] = []
    for url in urls:
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))
        except Exception:  # deleted meanwhile
            continue
        values = attributes.get("Attributes", {})
        for attribute, metric in DEPTH_ATTRIBUTES.items():
            if attribute in values:
                samples.append((_id(metric, "Count", queue_name(url)), float(values[attribute])))
    sink.add_all(samples)
