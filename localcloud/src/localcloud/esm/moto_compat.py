"""Adjustments to an in-process moto so that localcloud's mapping engine owns stream delivery.

moto 5.2.5 has its own, synchronous stream triggers: every PutRecord on a Kinesis stream with a
mapping invokes the function (in Docker) once per record, and every DynamoDB write with a mapping
invokes it and then *empties the table's stream*, so a poller never sees the records. Its
resharding also keeps routing new records to the closed parent shard and re-numbers the parent's
records, and its GetRecords never says that a closed shard has ended; and it leaves
StartingPositionTimestamp out of the mappings it lists. :func:`apply` turns the triggers off, makes
resharding behave like Kinesis (a closed parent keeps its records; new records go to the open child
that owns the key's hash; GetRecords at a closed shard's end answers without a NextShardIterator
and with the shard's ChildShards), reports the timestamp, and bounds the DynamoDB Streams iterators
moto would otherwise keep forever.

It patches process-wide moto classes, is idempotent, and is a no-op when moto is not importable
(e.g. when the engine talks to a moto running in another process, which must apply it there).
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_right
from itertools import islice
from operator import attrgetter
from typing import Any

from . import moto_mapping_api

_log = logging.getLogger(__name__)
_lock = threading.Lock()
_state = {"applied": False}


def apply() -> bool:
    """Patch moto (once). Returns True when moto is present and patched."""
    with _lock:
        if _state["applied"]:
            return True
        try:
            # Imported lazily: moto is heavy and may live in another process.
            from moto.awslambda.models import EventSourceMapping, LambdaBackend  # noqa: PLC0415
            from moto.awslambda.responses import LambdaResponse  # noqa: PLC0415
            from moto.dynamodbstreams.models import DynamoDBStreamsBackend  # noqa: PLC0415
            from moto.kinesis import models as kinesis_models  # noqa: PLC0415
            from moto.kinesis.responses import KinesisResponse  # noqa: PLC0415
        except ImportError:  # pragma: no cover - moto is a localcloud dependency
            return False
        _disable_stream_triggers(LambdaBackend)
        _fix_resharding(kinesis_models)
        _end_closed_shards(KinesisResponse)
        _index_shard_records(kinesis_models.Shard)
        _report_starting_timestamp(EventSourceMapping)
        _bound_stream_iterators(DynamoDBStreamsBackend)
        moto_mapping_api.patch(
            LambdaBackend, EventSourceMapping, LambdaResponse, kinesis_models.kinesis_backends
        )
        _state["applied"] = True
        _log.debug("moto stream triggers disabled and Kinesis resharding fixed")
        return True


def _disable_stream_triggers(backend_cls: Any) -> None:
    def send_kinesis_message(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def send_dynamodb_items(self: Any, *args: Any, **kwargs: Any) -> str:
        # An empty (falsy) result keeps moto from clearing the table's stream records.
        return ""

    backend_cls.send_kinesis_message = send_kinesis_message
    backend_cls.send_dynamodb_items = send_dynamodb_items


# DynamoDB Streams iterators moto keeps; older ones are dropped (AWS expires them after 15 minutes).
MAX_STREAM_ITERATORS = 10_000


def _bound_stream_iterators(backend_cls: Any) -> None:
    # moto stores every iterator it hands out forever; a poller asking four times per second
    # would grow that dict without end.
    original = backend_cls.get_records

    def get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        result = original(self, iterator_arn, limit)
        excess = len(self.shard_iterators) - MAX_STREAM_ITERATORS
        if excess > 0:
            for key in list(self.shard_iterators)[:excess]:
                del self.shard_iterators[key]
        return result

    backend_cls.get_records = get_records


def _report_starting_timestamp(mapping_cls: Any) -> None:
    # moto stores StartingPositionTimestamp but leaves it out of Get/ListEventSourceMappings.
    original = mapping_cls.get_configuration

    def get_configuration(self: Any) -> dict[str, Any]:
        configuration: dict[str, Any] = original(self)
        if self.starting_position_timestamp is not None:
            configuration["StartingPositionTimestamp"] = self.starting_position_timestamp
        return configuration

    mapping_cls.get_configuration = get_configuration


def _index_shard_records(shard_cls: Any) -> None:
    """Make moto's per-shard record lookups O(log n) instead of O(n).

    moto finds a shard's last sequence number by listing every key on each PutRecord, and serves
    GetRecords by scanning from the first record; a shard holding a few minutes of a live race
    (hundreds of thousands of records) then slows every call to a crawl. Records are only ever
    appended with increasing sequence numbers, so a sorted key list kept up to date incrementally
    answers both with a bisection.
    """

    def sorted_keys(self: Any) -> list[int]:
        keys: list[int] | None = self.__dict__.get("_localcloud_keys")
        records = self.records
        if keys is None or len(keys) > len(records) or (keys and keys[-1] not in records):
            keys = list(records)
        elif len(keys) < len(records):
            # New records were appended at the end: take just those, from the end.
            tail = list(islice(reversed(records), len(records) - len(keys)))
            keys.extend(reversed(tail))
        self.__dict__["_localcloud_keys"] = keys
        return keys

    def get_max_sequence_number(self: Any) -> int:
        return next(reversed(self.records), 0)

    def get_min_sequence_number(self: Any) -> int:
        return next(iter(self.records), 0)

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
        last = int(last_sequence_id)
        keys = sorted_keys(self)
        start = bisect_right(keys, last)
        chosen = keys[start:] if limit is None else keys[start : start + limit]
        if not chosen:
            return [], last, 0
        results = [self.records[k] for k in chosen]
        newest = self.records[keys[-1]]
        behind_ms = int((newest.created_at - results[-1].created_at) * 1000)
        return results, chosen[-1], behind_ms

    shard_cls.get_max_sequence_number = get_max_sequence_number
    shard_cls.get_min_sequence_number = get_min_sequence_number
    shard_cls.get_records = get_records


def _fix_resharding(models: Any) -> None:
    stream_cls = models.Stream
    shard_cls = models.Shard
    invalid_argument = models.InvalidArgumentError

    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
        if not isinstance(partition_key, str) or len(partition_key) > 256:
            raise invalid_argument("partition_key")
        if explicit_hash_key:
            int_key = int(explicit_hash_key)
            if int_key >= 2**128:
                raise invalid_argument("explicit_hash_key")
        else:
            int_key = int(models.md5_hash(partition_key.encode("utf-8")).hexdigest(), 16)
        for shard in self.shards.values():
            # Only open shards accept records; moto would also pick a closed parent.
            if shard.is_open and shard.starting_hash <= int_key <= shard.ending_hash:
                return shard
        return None

    def next_index(self: Any) -> int:
        return int(sorted(self.shards.values(), key=attrgetter("_shard_id"))[-1]._shard_id) + 1

    def split_shard(self: Any, shard_to_split: str, new_starting_hash_key: str) -> None:
        new_start = int(new_starting_hash_key)
        shard = self.shards[shard_to_split]
        if not shard.starting_hash < new_start < shard.ending_hash:
            raise invalid_argument(
                message=f"NewStartingHashKey {new_start} is outside shard {shard.shard_id}'s hash range."
            )
        if not shard.is_open:
            raise invalid_argument(message=f"Shard {shard.shard_id} has already been merged or split.")
        index = next_index(self)
        first = shard_cls(index, shard.starting_hash, new_start - 1, parent=shard.shard_id)
        second = shard_cls(index + 1, new_start, shard.ending_hash, parent=shard.shard_id)
        self.shards[first.shard_id] = first
        self.shards[second.shard_id] = second
        # Kinesis keeps the parent's records in the (now closed) parent.
        shard.is_open = False

    def merge_shards(self: Any, shard_to_merge: str, adjacent_shard_to_merge: str) -> None:
        one, two = self.shards[shard_to_merge], self.shards[adjacent_shard_to_merge]
        if one.ending_hash + 1 == two.starting_hash:
            low, high = one, two
        elif two.ending_hash + 1 == one.starting_hash:
            low, high = two, one
        else:
            raise invalid_argument(adjacent_shard_to_merge)
        merged = shard_cls(
            next_index(self),
            low.starting_hash,
            high.ending_hash,
            parent=one.shard_id,
            adjacent_parent=two.shard_id,
        )
        self.shards[merged.shard_id] = merged
        one.is_open = False
        two.is_open = False

    stream_cls.get_shard_for_key = get_shard_for_key
    stream_cls.split_shard = split_shard
    stream_cls.merge_shards = merge_shards


def child_shards(stream: Any, shard_id: str) -> list[dict[str, Any]]:
    """The ChildShards entries of ``shard_id`` (the shards naming it as a parent), as Kinesis lists them."""
    children = []
    for shard in sorted(stream.shards.values(), key=attrgetter("_shard_id")):
        parents = [p for p in (shard.parent, shard.adjacent_parent) if p]
        if shard_id in parents:
            children.append(
                {
                    "ShardId": shard.shard_id,
                    "ParentShards": parents,
                    "HashKeyRange": {
                        "StartingHashKey": str(shard.starting_hash),
                        "EndingHashKey": str(shard.ending_hash),
                    },
                }
            )
    return children


def _end_closed_shards(response_cls: Any) -> None:
    """GetRecords at the end of a closed shard: no NextShardIterator, and the ChildShards.

    That is how Kinesis tells a reader that a split or merged shard is done and where to go next.
    moto hands out another iterator forever, so a reader that follows the protocol (the KCL checks
    that a missing iterator comes with child shards and vice versa) never finishes the parent and
    never starts its children.
    """
    from moto.kinesis.utils import decompose_shard_iterator  # noqa: PLC0415

    original = response_cls.get_records

    def get_records(self: Any) -> Any:
        result = original(self)
        answer = result.result
        iterator = answer.get("NextShardIterator") if isinstance(answer, dict) else None
        if not iterator:
            return result
        stream_name, shard_id, last_sequence = decompose_shard_iterator(iterator)
        stream = self.kinesis_backend.describe_stream(
            stream_arn=self._get_param("StreamARN"), stream_name=stream_name
        )
        shard = stream.shards.get(shard_id)
        if shard is None or shard.is_open or int(last_sequence) < shard.get_max_sequence_number():
            return result
        ended = {key: value for key, value in answer.items() if key != "NextShardIterator"}
        ended["MillisBehindLatest"] = 0
        ended["ChildShards"] = child_shards(stream, shard_id)
        return type(result)(ended)

    response_cls.get_records = get_records
