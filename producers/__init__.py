"""Kinesis producer library: batching, concurrent sends, retries of failed entries, KPL aggregation
(the record formats themselves are :mod:`streamformat`).

Typical use::

    with KinesisProducer("alleycat-stream", endpoint_url=url, region="us-east-1") as producer:
        producer.put(orjson.dumps(message), partition_key=message["raceId"])
    failed = producer.last_result.failed
"""

from producers.batching import BatchBuilder, split_batches
from producers.client import PutRecordsClient, build_kinesis_client
from producers.errors import (
    InvalidPartitionKeyError,
    ProducerClosedError,
    ProducerError,
    RecordTooLargeError,
)
from producers.kinesis import KinesisProducer, normalize_partition_key
from producers.limits import (
    KPL_AGGREGATION_MAX_BYTES,
    MAX_PARTITION_KEY_CHARS,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_REQUEST,
    MAX_REQUEST_BYTES,
)
from producers.records import FailedRecord, ProducerStats, PutResult
from producers.retry import RETRYABLE_CALL_CODES, RETRYABLE_ENTRY_CODES, RetryPolicy

__all__ = [
    "KPL_AGGREGATION_MAX_BYTES",
    "MAX_PARTITION_KEY_CHARS",
    "MAX_RECORDS_PER_REQUEST",
    "MAX_RECORD_BYTES",
    "MAX_REQUEST_BYTES",
    "RETRYABLE_CALL_CODES",
    "RETRYABLE_ENTRY_CODES",
    "BatchBuilder",
    "FailedRecord",
    "InvalidPartitionKeyError",
    "KinesisProducer",
    "ProducerClosedError",
    "ProducerError",
    "ProducerStats",
    "PutRecordsClient",
    "PutResult",
    "RecordTooLargeError",
    "RetryPolicy",
    "build_kinesis_client",
    "normalize_partition_key",
    "split_batches",
]
