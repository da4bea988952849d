"""DynamoDB implementation of the :class:`~leaderboard.domain.ports.RaceStore` port.

Writes are optimistic: a merge reads the race summary and the touched buckets, folds the delta in,
and writes them back in one transaction whose every item is conditioned on the version it read. A
concurrent writer (a retry racing a new batch, a reshard's parent and child) makes the transaction
fail its condition; the merge then re-reads and tries again, so both updates land. Merging a delta
whose seconds are all counted already writes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from leaderboard.adapters.items import (
    BUCKET_PREFIX,
    BY_STATUS_INDEX,
    META_SK,
    Item,
    bucket_scores,
    bucket_sk,
    class_pk,
    iso,
    n,
    pb_rank_key,
    pb_sk,
    race_from_item,
    race_pk,
    race_to_item,
    s,
    score_to_attr,
)
from leaderboard.domain.ports import MergeOutcome
from leaderboard.domain.race import BucketChange, FinalResult, RaceDelta, RaceSummary, apply_to_bucket
from leaderboard.domain.scoring import RacerScore

T = TypeVar("T")

# Errors worth retrying: the table or the account is throttling, or DynamoDB had a transient fault.
_TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}
_MAX_TRANSACTION_ITEMS = 100  # DynamoDB's TransactWriteItems limit; one slot is the race summary


class MergeConflictError(RuntimeError):
    """A merge kept losing optimistic-concurrency races; the caller should retry the batch."""


class _VersionConflictError(Exception):
    """Another writer changed an item between our read and our write."""


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for throttling and version conflicts: exponential with full jitter."""

    attempts: int = 8
    base_delay: float = 0.05
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Sleep before retry number ``attempt`` (0-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))


def _is_transient(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    if code in _TRANSIENT:
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        codes = {r.get("Code") for r in reasons}
        return bool(codes & {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"})
    return False


def _is_condition_failure(exc: ClientError) -> bool:
    code = exc.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return True
    if code == "TransactionCanceledException":
        reasons = exc.response.get("CancellationReasons", [])
        if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
            return True
        # Some implementations omit the reasons; the message still names the condition.
        return "ConditionalCheckFailed" in str(exc)
    return False


class DynamoRaceStore:
    """Race standings, summaries and class personal bests in one DynamoDB table."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pb_concurrency: int = 8,
    ) -> None:
        """Use ``client`` (a boto3 DynamoDB client) on ``table_name``."""
        self._ddb = client
        self._table = table_name
        self._clock = clock
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._pb_concurrency = pb_concurrency

    # -- reads ------------------------------------------------------------------------------------

    def get_race(self, race_id: int) -> RaceSummary | None:
        """The race's summary, or None when unknown."""
        item = self._call(
            lambda: self._ddb.get_item(
                TableName=self._table,
                Key={"pk": s(race_pk(race_id)), "sk": s(META_SK)},
                ConsistentRead=True,
            )
        ).get("Item")
        return race_from_item(item) if item else None

    def load_scores(self, race_id: int) -> list[RacerScore]:
        """Every racer's stored score in the race (all buckets)."""
        scores: list[RacerScore] = []
        for item in self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :b)",
            ExpressionAttributeValues={":pk": s(race_pk(race_id)), ":b": s(BUCKET_PREFIX)},
            ConsistentRead=True,
        ):
            scores.extend(bucket_scores(item).values())
        return scores

    def live_races(self) -> Iterator[RaceSummary]:
        """Races whose status is still live."""
        for item in self._query(
            IndexName=BY_STATUS_INDEX,
            KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues={":p": s("STATUS#live")},
        ):
            yield race_from_item(item)

    # -- merge ------------------------------------------------------------------------------------

    def merge(self, delta: RaceDelta) -> MergeOutcome:
        """Fold a race delta into storage (idempotent, safe under concurrent merges)."""
        groups = delta.by_bucket()
        for attempt in range(self._retry.attempts):
            race, buckets = self._read_race(delta.race_id, list(groups))
            changes = {b: apply_to_bucket(buckets[b][1] if b in buckets else {}, groups[b]) for b in groups}
            closed = race is not None and race.closed
            final_scores = tuple(
                changes[b].scores[racer_id]
                for b, racers in groups.items()
                for racer_id in racers
                if closed or changes[b].scores[racer_id].final
            )
            changed = {b: c for b, c in changes.items() if c.changed}
            if race is not None and not changed:
                return MergeOutcome(race=race, items_written=0, final_scores=final_scores)
            try:
                race_after, written = self._write(delta, race, buckets, changed)
            except _VersionConflictError:
                self._sleep(self._retry.delay(attempt))
                continue
            return MergeOutcome(race=race_after, items_written=written, final_scores=final_scores)
        raise MergeConflictError(f"race {delta.race_id}: too many concurrent updates, giving up for now")

    def _read_race(
        self, race_id: int, bucket_ids: list[int]
    ) -> tuple[RaceSummary | None, dict[int, tuple[int, dict[int, RacerScore]]]]:
        """The race summary and the given buckets as (version, scores), read consistently."""
        keys = [{"pk": s(race_pk(race_id)), "sk": s(META_SK)}]
        keys += [{"pk": s(race_pk(race_id)), "sk": s(bucket_sk(b))} for b in bucket_ids]
        race: RaceSummary | None = None
        buckets: dict[int, tuple[int, dict[int, RacerScore]]] = {}
        for item in self._batch_get(keys):
            if item["sk"]["S"] == META_SK:
                race = race_from_item(item)
            else:
                buckets[int(item["bucket"]["N"])] = (int(item["version"]["N"]), bucket_scores(item))
        return race, buckets

    def _write(
        self,
        delta: RaceDelta,
        race: RaceSummary | None,
        buckets: Mapping[int, tuple[int, dict[int, RacerScore]]],
        changed: Mapping[int, BucketChange],
    ) -> tuple[RaceSummary, int]:
        """Write changed buckets plus the summary, in transactions of at most 100 items."""
        now = self._clock()
        max_second = max((d.last_second for d in delta.racers.values()), default=0)
        current = race
        written = 0
        # A new race with no changed bucket still gets its summary written: one empty chunk.
        bucket_ids: list[int | None] = list(sorted(changed)) or [None]
        per_tx = _MAX_TRANSACTION_ITEMS - 1
        for start in range(0, len(bucket_ids), per_tx):
            chunk = [b for b in bucket_ids[start : start + per_tx] if b is not None]
            after = RaceSummary(
                race_id=delta.race_id,
                class_id=current.class_id if current else delta.class_id,
                racers=(current.racers if current else 0) + sum(changed[b].new_racers for b in chunk),
                finished_racers=(current.finished_racers if current else 0)
                + sum(changed[b].newly_final for b in chunk),
                updated_at=now,
                version=(current.version if current else 0) + 1,
                closed=current.closed if current else False,
                first_device_ts=min(current.first_device_ts, delta.first_device_ts)
                if current and current.first_device_ts
                else delta.first_device_ts,
                last_device_ts=max(current.last_device_ts if current else 0, delta.last_device_ts),
                max_second=max(current.max_second if current else 0, max_second),
            )
            items = [self._bucket_put(delta, b, buckets.get(b), changed[b]) for b in chunk]
            items.append(self._conditional_put(race_to_item(after), current.version if current else None))
            try:
                self._call(partial(self._ddb.transact_write_items, TransactItems=items))
            except ClientError as exc:
                if _is_condition_failure(exc):
                    raise _VersionConflictError from exc
                raise
            written += len(items)
            current = after
        assert current is not None
        return current, written

    def _bucket_put(
        self,
        delta: RaceDelta,
        bucket: int,
        stored: tuple[int, dict[int, RacerScore]] | None,
        change: BucketChange,
    ) -> dict[str, Any]:
        version = stored[0] if stored else None
        item: Item = {
            "pk": s(race_pk(delta.race_id)),
            "sk": s(bucket_sk(bucket)),
            "raceId": n(delta.race_id),
            "classId": n(delta.class_id),
            "bucket": n(bucket),
            "version": n((version or 0) + 1),
            "racers": {"M": {str(rid): score_to_attr(sc) for rid, sc in change.scores.items()}},
        }
        return self._conditional_put(item, version)

    def _conditional_put(self, item: Item, expected_version: int | None) -> dict[str, Any]:
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :expected",
                "ExpressionAttributeValues": {":expected": n(expected_version)},
            }
        return {"Put": {"TableName": self._table, "Item": item, **condition}}

    # -- results and closing ------------------------------------------------------------------------

    def record_results(self, results: Sequence[FinalResult]) -> int:
        """Keep-best personal bests per class: a conditional update per racer, run concurrently."""
        if not results:
            return 0
        if len(results) == 1 or self._pb_concurrency <= 1:
            return sum(self._offer_best(r) for r in results)
        with ThreadPoolExecutor(max_workers=self._pb_concurrency) as pool:
            return sum(pool.map(self._offer_best, results))

    def _offer_best(self, result: FinalResult) -> bool:
        try:
            self._call(
                lambda: self._ddb.update_item(
                    TableName=self._table,
                    Key={"pk": s(class_pk(result.class_id)), "sk": s(pb_sk(result.racer_id))},
                    UpdateExpression=(
                        "SET best = :best, #name = :name, raceId = :race, achievedAt = :at, "
                        "classId = :class, racerId = :racer, gsi1pk = :gpk, gsi1sk = :gsk"
                    ),
                    ConditionExpression="attribute_not_exists(best) OR best < :best",
                    ExpressionAttributeNames={"#name": "name"},
                    ExpressionAttributeValues={
                        ":best": n(result.total),
                        ":name": s(result.name),
                        ":race": n(result.race_id),
                        ":at": s(iso(result.achieved_at)),
                        ":class": n(result.class_id),
                        ":racer": n(result.racer_id),
                        ":gpk": s(class_pk(result.class_id)),
                        ":gsk": s(pb_rank_key(result.total, result.racer_id)),
                    },
                )
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False  # not better than the stored best: keep-best
            raise
        return True

    def close_race(self, race_id: int, expected_version: int) -> bool:
        """Mark the race final if nobody changed it since ``expected_version``."""
        try:
            self._call(
                lambda: self._ddb.update_item(
                    TableName=self._table,
                    Key={"pk": s(race_pk(race_id)), "sk": s(META_SK)},
                    UpdateExpression=(
                        "SET closed = :true, #status = :final, gsi2pk = :gsi, "
                        "version = :next, updatedAt = :now"
                    ),
                    ConditionExpression="version = :expected",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":true": {"BOOL": True},
                        ":final": s("final"),
                        ":gsi": s("STATUS#final"),
                        ":next": n(expected_version + 1),
                        ":expected": n(expected_version),
                        ":now": s(iso(self._clock())),
                    },
                )
            )
        except ClientError as exc:
            if _is_condition_failure(exc):
                return False
            raise
        return True

    # -- plumbing -----------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run a DynamoDB call, retrying throttling and transient faults with jittered back-off."""
        for attempt in range(self._retry.attempts):
            try:
                return fn()
            except ClientError as exc:
                if not _is_transient(exc) or attempt == self._retry.attempts - 1:
                    raise
                self._sleep(self._retry.delay(attempt))
        raise AssertionError("unreachable")

    def _batch_get(self, keys: list[dict[str, Any]]) -> Iterable[Item]:
        """BatchGetItem in chunks of 100, following UnprocessedKeys with back-off."""
        for start in range(0, len(keys), 100):
            chunk = keys[start : start + 100]
            pending: dict[str, Any] = {self._table: {"Keys": chunk, "ConsistentRead": True}}
            attempt = 0
            while pending:
                response = self._call(partial(self._ddb.batch_get_item, RequestItems=pending))
                yield from response.get("Responses", {}).get(self._table, [])
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    if attempt >= self._retry.attempts:
                        raise MergeConflictError("DynamoDB kept returning unprocessed keys")
                    self._sleep(self._retry.delay(attempt))
                    attempt += 1

    def _query(self, **kwargs: Any) -> Iterator[Item]:
        start: dict[str, Any] | None = None
        while True:
            page_args = dict(kwargs, TableName=self._table)
            if start:
                page_args["ExclusiveStartKey"] = start
            page = self._call(partial(self._ddb.query, **page_args))
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return
