"""Shard readers for Kinesis and DynamoDB Streams (boto3 against the local endpoint).

A source lists shards (with their parents), opens iterators and reads records into
:class:`~localcloud.esm.records.StreamRecord`. It holds no position: the shard worker does.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from .config import MappingConfig, SourceKind, arn_region
from .records import StreamRecord, dynamodb_record, kinesis_record

# Service limits on one GetRecords call.
KINESIS_MAX_READ = 10_000
DYNAMODB_MAX_READ = 1_000


class SourceGoneError(Exception):
    """The stream or shard no longer exists (deleted stream, disabled table stream)."""


@dataclass(frozen=True)
class ShardInfo:
    """A shard and its lineage, as listed by the source."""

    shard_id: str
    parents: tuple[str, ...]
    closed: bool


@dataclass(frozen=True)
class Position:
    """Where to open a shard iterator.

    ``kind`` is a ShardIteratorType; ``sequence`` goes with AT/AFTER_SEQUENCE_NUMBER,
    ``timestamp`` with AT_TIMESTAMP.
    """

    kind: str
    sequence: str | None = None
    timestamp: float | None = None


@dataclass(frozen=True)
class ReadResult:
    """One GetRecords answer. ``next_iterator`` is None once a closed shard has been read to its end."""

    records: list[StreamRecord]
    next_iterator: str | None
    millis_behind: int | None


_client_lock = threading.Lock()
_clients: dict[tuple[str, str, str], Any] = {}
_session: boto3.session.Session | None = None


def make_client(service: str, endpoint_url: str, region: str) -> Any:
    """A shared boto3 client for the local endpoint with dummy credentials and short timeouts.

    Clients are cached and built from one session: loading botocore's service models costs
    hundreds of milliseconds per new session, and boto3 clients are safe to share across threads.
    """
    global _session  # noqa: PLW0603 - one lazily built session for the whole process
    key = (service, endpoint_url, region)
    with _client_lock:
        client = _clients.get(key)
        if client is None:
            if _session is None:
                _session = boto3.session.Session(
                    aws_access_key_id="localcloud", aws_secret_access_key="localcloud"
                )
            client = _session.client(  # type: ignore[call-overload]
                service,
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=30,
                    max_pool_connections=50,
                ),
            )
            _clients[key] = client
        return client


def _is_not_found(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("ResourceNotFoundException", "StreamNotFoundException")


@contextmanager
def _gone_if_not_found() -> Iterator[None]:
    """Turn the service's not-found errors into :class:`SourceGoneError` (the source was deleted)."""
    try:
        yield
    except Exception as exc:
        if _is_not_found(exc):
            raise SourceGoneError(str(exc)) from exc
        raise


class StreamSource(ABC):
    """Reads one stream for one mapping."""

    max_read: int

    def __init__(self, config: MappingConfig, endpoint_url: str) -> None:
        self.config = config
        self.region = arn_region(config.event_source_arn)
        self.endpoint_url = endpoint_url

    @abstractmethod
    def list_shards(self) -> list[ShardInfo]:
        """All shards of the stream, open and closed."""

    @abstractmethod
    def open_iterator(self, shard_id: str, position: Position) -> str:
        """A shard iterator at ``position``."""

    @abstractmethod
    def read(self, iterator: str, limit: int, shard_id: str, role_arn: str) -> ReadResult:
        """Read up to ``limit`` records from ``iterator``."""

    def reread(self, shard_id: str, records: Sequence[StreamRecord], role_arn: str) -> list[StreamRecord]:
        """Read ``records`` again from the stream (retries re-read, as Lambda does).

        Records the stream no longer returns (trimmed by retention) are kept from the previous read,
        so a retry never silently drops them.
        """
        if not records:
            return []
        wanted = {r.sequence_number for r in records}
        last = max(r.seq for r in records)
        found: dict[str, StreamRecord] = {}
        iterator: str | None = self.open_iterator(
            shard_id, Position("AT_SEQUENCE_NUMBER", records[0].sequence_number)
        )
        reads = 0
        while iterator and reads < 1_000:
            reads += 1
            result = self.read(iterator, self.max_read, shard_id, role_arn)
            for record in result.records:
                if record.sequence_number in wanted:
                    found[record.sequence_number] = record
            if not result.records or result.records[-1].seq >= last:
                break
            iterator = result.next_iterator
        return [found.get(r.sequence_number, r) for r in records]


class KinesisSource(StreamSource):
    """A Kinesis data stream."""

    max_read = KINESIS_MAX_READ

    @property
    def _client(self) -> Any:
        return make_client("kinesis", self.endpoint_url, self.region)

    def list_shards(self) -> list[ShardInfo]:
        """ListShards, paginated."""
        shards: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamName": self.config.stream_name}
        with _gone_if_not_found():
            while True:
                page = self._client.list_shards(**kwargs)
                for shard in page.get("Shards", []):
                    parents = tuple(
                        p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p
                    )
                    closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
                    shards.append(ShardInfo(shard["ShardId"], parents, closed))
                token = page.get("NextToken")
                if not token:
                    return shards
                kwargs = {"NextToken": token}

    def open_iterator(self, shard_id: str, position: Position) -> str:
        """GetShardIterator."""
        kwargs: dict[str, Any] = {
            "StreamName": self.config.stream_name,
            "ShardId": shard_id,
            "ShardIteratorType": position.kind,
        }
        if position.sequence is not None:
            kwargs["StartingSequenceNumber"] = position.sequence
        if position.timestamp is not None:
            kwargs["Timestamp"] = position.timestamp
        with _gone_if_not_found():
            return str(self._client.get_shard_iterator(**kwargs)["ShardIterator"])

    def read(self, iterator: str, limit: int, shard_id: str, role_arn: str) -> ReadResult:
        """GetRecords."""
        with _gone_if_not_found():
            answer = self._client.get_records(ShardIterator=iterator, Limit=min(limit, self.max_read))
        arn = self.config.event_source_arn
        records = [kinesis_record(r, shard_id, arn, self.region, role_arn) for r in answer.get("Records", [])]
        return ReadResult(records, answer.get("NextShardIterator"), answer.get("MillisBehindLatest"))


class DynamoDBStreamSource(StreamSource):
    """A DynamoDB table stream."""

    max_read = DYNAMODB_MAX_READ

    @property
    def _client(self) -> Any:
        return make_client("dynamodbstreams", self.endpoint_url, self.region)

    def list_shards(self) -> list[ShardInfo]:
        """DescribeStream, paginated."""
        shards: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamArn": self.config.event_source_arn}
        with _gone_if_not_found():
            while True:
                description = self._client.describe_stream(**kwargs)["StreamDescription"]
                if description.get("StreamStatus") == "DISABLED" and not description.get("Shards"):
                    raise SourceGoneError("stream is disabled")
                for shard in description.get("Shards", []):
                    parent = shard.get("ParentShardId")
                    closed = "EndingSequenceNumber" in shard.get("SequenceNumberRange", {})
                    shards.append(ShardInfo(shard["ShardId"], (parent,) if parent else (), closed))
                last = description.get("LastEvaluatedShardId")
                if not last:
                    return shards
                kwargs["ExclusiveStartShardId"] = last

    def open_iterator(self, shard_id: str, position: Position) -> str:
        """GetShardIterator (no AT_TIMESTAMP on DynamoDB Streams: TRIM_HORIZON is used instead)."""
        kind = "TRIM_HORIZON" if position.kind == "AT_TIMESTAMP" else position.kind
        kwargs: dict[str, Any] = {
            "StreamArn": self.config.event_source_arn,
            "ShardId": shard_id,
            "ShardIteratorType": kind,
        }
        if position.sequence is not None:
            kwargs["SequenceNumber"] = position.sequence
        with _gone_if_not_found():
            return str(self._client.get_shard_iterator(**kwargs)["ShardIterator"])

    def read(self, iterator: str, limit: int, shard_id: str, role_arn: str) -> ReadResult:
        """GetRecords."""
        with _gone_if_not_found():
            answer = self._client.get_records(ShardIterator=iterator, Limit=min(limit, self.max_read))
        arn = self.config.event_source_arn
        records = [dynamodb_record(r, shard_id, arn, self.region) for r in answer.get("Records", [])]
        return ReadResult(records, answer.get("NextShardIterator"), None)


def make_source(config: MappingConfig, endpoint_url: str) -> StreamSource:
    """The reader for a mapping's event source."""
    if config.kind is SourceKind.KINESIS:
        return KinesisSource(config, endpoint_url)
    return DynamoDBStreamSource(config, endpoint_url)
