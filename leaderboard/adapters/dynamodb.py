"""DynamoDB implementation of the :class:`~leaderboard.domain.ports.RaceStore` port.

Writes are optimistic: every item carries a version, and each write is a put conditioned on the
version that was read. A concurrent writer (a retry racing a new batch, a reshard's parent and child)
makes the condition fail; the merge then re-reads and folds again, so both updates land. Merging a
delta whose seconds are all counted already writes nothing.

Single-item conditional puts rather than one transaction: they cost half the write units, and the
summary records each bucket's counts at the bucket's version, so it converges without atomicity.
A window's bucket puts are independent, so they run concurrently, on the same bounded pool as the
personal bests (see :meth:`DynamoRaceStore.record_results` for how those are written and why).

Retries: one policy, ours (:class:`~leaderboard.retry.RetryPolicy`), bounded by a deadline the
caller sets from the invocation's remaining time (:meth:`DynamoRaceStore.retry_until`). The client
should not retry as well (:data:`CLIENT_CONFIG`): botocore's attempts multiply ours (4 x 8 calls
once took ~30 s of a 60 s timeout) and cannot see the deadline, while ours must stay, since only we
can retry a lost version race or unprocessed keys. A merge that runs out of time raises, so Lambda
sees a failed invocation and the mapping retries the window with the same state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from leaderboard.adapters.items import (
    BUCKET_FORMAT,
    BUCKET_PREFIX,
    BY_STATUS_INDEX,
    MAX_ITEM_BYTES,
    META_SK,
    PB_PREFIX,
    PB_SCALE,
    Item,
    bucket_scores,
    bucket_sk,
    class_pk,
    encode_scores,
    iso,
    item_size,
    legacy_pb_bound,
    n,
    parse_iso,
    pb_rank_key,
    pb_sk,
    race_from_item,
    race_pk,
    race_to_item,
    s,
)
from leaderboard.domain.ports import MergeOutcome, ShardProgress
from leaderboard.domain.race import (
    BucketChange,
    BucketCount,
    FinalResult,
    RaceDelta,
    RaceSummary,
    apply_to_bucket,
    merge_bucket_counts,
)
from leaderboard.domain.scoring import RacerScore
from leaderboard.retry import RetryPolicy

T = TypeVar("T")
A = TypeVar("A")

# Without a deadline (tests, scripts) retries are bounded by attempts: 8, at most ~6 s of waiting
# with base 50 ms and cap 2 s. With one, the deadline bounds them (the policy's record_ttl is about
# a producer's records and does not apply here).
_DEFAULT_ATTEMPTS = 8

# The store's client: botocore does not retry (one attempt in all; the config's ``max_attempts``
# would count retries after the first, so it says ``total_max_attempts``); the store's own policy
# does, within the invocation's time. See the module's docstring.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})

# Errors worth retrying: the table or the account is throttling, or DynamoDB had a transient fault.
_TRANSIENT = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
# Connection faults botocore would have retried: a write that timed out may have landed, which the
# versioned condition (or keep-best) turns into a harmless conflict on the retry.
_TRANSIENT_CONNECTION = (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

# BatchGetItem reads at most 100 keys a call.
_BATCH_GET_KEYS = 100

# The consumers' progress through the stream, one item per shard (see record_progress).
_PROGRESS_PK = "PROGRESS"
_SHARD_PREFIX = "SHARD#"


class MergeConflictError(RuntimeError):
    """A merge kept losing optimistic-concurrency races; the caller should retry the batch."""


class RetryBudgetExhaustedError(RuntimeError):
    """DynamoDB kept failing until the retry deadline; the caller should fail the invocation."""


class ItemTooLargeError(RuntimeError):
    """A bucket would pass DynamoDB's item limit (the message validator's bounds prevent it)."""


@dataclass(frozen=True)
class _MergedBucket:
    """A bucket after the delta was folded in."""

    scores: dict[int, RacerScore]
    count: BucketCount
    written: bool


def _is_transient(exc: Exception) -> bool:
    if isinstance(exc, _TRANSIENT_CONNECTION):
        return True
    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return exc.response.get("Error", {}).get("Code", "") in _TRANSIENT or status >= 500


def _is_condition_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code", "") == "ConditionalCheckFailedException"


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
        monotonic: Callable[[], float] = time.monotonic,
        pb_concurrency: int = 8,
    ) -> None:
        """Use ``client`` (a boto3 DynamoDB client, built with :data:`CLIENT_CONFIG`) on ``table_name``."""
        self._ddb = client
        self._table = table_name
        self._clock = clock
        self._retry = retry or RetryPolicy(max_attempts=_DEFAULT_ATTEMPTS)
        self._sleep = sleep
        self._monotonic = monotonic
        self._deadline: float | None = None
        self._pb_concurrency = pb_concurrency

    def retry_until(self, deadline: float | None) -> None:
        """Stop retrying at ``deadline`` (a ``monotonic`` instant; None: bound by attempts only).

        A Lambda handler sets it per invocation from the remaining time, less a reserve to report
        the failure: retrying past it would only let the timeout kill the invocation instead.
        """
        self._deadline = deadline

    def _may_retry(self, retry_number: int) -> float | None:
        """The back-off before retry ``retry_number`` (1-based), or None when retries are spent."""
        delay = self._retry.backoff(retry_number)
        if self._deadline is not None:
            return delay if self._monotonic() + delay < self._deadline else None
        attempts = self._retry.max_attempts or _DEFAULT_ATTEMPTS
        return delay if retry_number < attempts else None

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
        """Fold a race delta into storage (idempotent, safe under concurrent merges).

        Phase one folds the delta into each touched bucket with a conditional put on the bucket's
        version; racers whose score changes and who are final (or whose race is closed) are offered
        as personal bests, all of them before any of the buckets is written. Phase two records
        every touched bucket's counts in the race summary, again with a conditional put. A crash
        between the phases is healed by the retry: the buckets no longer change, but phase two
        still sees their newer versions and updates the summary.

        The closer may close the race between the merge's first read and its summary write, after
        offering the scores it saw (older than ours). So when the summary the merge lands on is
        closed, every racer of the delta is offered again from the merged buckets: keep-best makes a
        repeated offer harmless, and a retry after a crash offers again too.
        """
        race = self.get_race(delta.race_id)
        buckets, bests = self._merge_buckets(delta, race)
        race_after, written = self._merge_summary(delta, buckets, race)
        if race_after.closed:
            bests += self.record_results(
                [
                    FinalResult(race_after.class_id, rid, sc.name, delta.race_id, sc.total, self._clock())
                    for merged in buckets.values()
                    for rid, sc in merged.scores.items()
                    if rid in delta.racers
                ]
            )
        written += sum(1 for b in buckets.values() if b.written)
        return MergeOutcome(race=race_after, items_written=written, personal_bests=bests)

    def _merge_buckets(
        self, delta: RaceDelta, race: RaceSummary | None
    ) -> tuple[dict[int, _MergedBucket], int]:
        merged: dict[int, _MergedBucket] = {}
        bests = 0
        closed = race is not None and race.closed
        class_id = race.class_id if race else delta.class_id
        pending = delta.by_bucket()
        attempt = 0
        while True:
            stored = self._read_buckets(delta.race_id, list(pending))
            changes: dict[int, tuple[int | None, BucketChange]] = {}
            offers: list[FinalResult] = []
            now = self._clock()
            for bucket, racers in pending.items():
                version, scores = stored.get(bucket, (None, {}))
                change = apply_to_bucket(scores, racers)
                changes[bucket] = (version, change)
                if change.changed:
                    offers += [
                        FinalResult(class_id, rid, sc.name, delta.race_id, sc.total, now)
                        for rid in racers
                        if (sc := change.scores[rid]) is not scores.get(rid) and (sc.final or closed)
                    ]
            # Every best of the window is offered before any bucket that finishes its racer is
            # written: a crash in between leaves the buckets unwritten, so the retry offers again
            # (keep-best makes that harmless). One offer for the whole window, not one per bucket,
            # so its reads and writes share one bounded pool.
            bests += self.record_results(offers)
            conflicts = self._put_buckets(
                {
                    bucket: (version, self._bucket_item(delta, bucket, change, (version or 0) + 1))
                    for bucket, (version, change) in changes.items()
                    if change.changed
                }
            )
            for bucket, (version, change) in changes.items():
                if bucket in conflicts:
                    continue  # someone else wrote it: re-read and fold again
                finished = sum(1 for s in change.scores.values() if s.final)
                merged[bucket] = _MergedBucket(
                    scores=change.scores,
                    count=BucketCount(
                        racers=len(change.scores),
                        finished=finished,
                        version=(version or 0) + (1 if change.changed else 0),
                    ),
                    written=change.changed,
                )
            if not conflicts:
                return merged, bests
            pending = {bucket: pending[bucket] for bucket in conflicts}
            attempt += 1
            if (delay := self._may_retry(attempt)) is None:
                raise MergeConflictError(
                    f"race {delta.race_id}: too many concurrent updates, giving up for now"
                )
            self._sleep(delay)

    def _put_buckets(self, writes: Mapping[int, tuple[int | None, Item]]) -> set[int]:
        """Write each bucket conditioned on the version read; the buckets that lost a version race.

        The puts are independent (each its own item and condition), so they run on the bounded pool.
        """

        def put(entry: tuple[int, tuple[int | None, Item]]) -> int | None:
            bucket, (version, item) = entry
            try:
                self._call(partial(self._ddb.put_item, **self._versioned_put(item, version)))
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
                return bucket
            return None

        return {bucket for bucket in self._map(put, list(writes.items())) if bucket is not None}

    def _merge_summary(
        self, delta: RaceDelta, buckets: Mapping[int, _MergedBucket], read: RaceSummary | None
    ) -> tuple[RaceSummary, int]:
        observed = {b: merged.count for b, merged in buckets.items()}
        max_second = max((d.last_second for d in delta.racers.values()), default=0)
        attempt = 0
        while True:
            # The summary read before the buckets is fresh enough for a first try; the version
            # condition catches anything that changed since.
            current = read if attempt == 0 else self.get_race(delta.race_id)
            counts = merge_bucket_counts(current.buckets if current else {}, observed)
            if current is not None:
                after = replace(
                    current,
                    buckets=counts,
                    racers=sum(c.racers for c in counts.values()),
                    finished_racers=sum(c.finished for c in counts.values()),
                    first_device_ts=min(
                        current.first_device_ts or delta.first_device_ts, delta.first_device_ts
                    ),
                    last_device_ts=max(current.last_device_ts, delta.last_device_ts),
                    max_second=max(current.max_second, max_second),
                )
                if after == current:
                    return current, 0  # a replay: nothing new to record
                after = replace(after, version=current.version + 1, updated_at=self._clock())
            else:
                after = RaceSummary(
                    race_id=delta.race_id,
                    class_id=delta.class_id,
                    racers=sum(c.racers for c in counts.values()),
                    finished_racers=sum(c.finished for c in counts.values()),
                    updated_at=self._clock(),
                    version=1,
                    first_device_ts=delta.first_device_ts,
                    last_device_ts=delta.last_device_ts,
                    max_second=max_second,
                    buckets=counts,
                )
            try:
                self._call(
                    partial(
                        self._ddb.put_item,
                        **self._versioned_put(race_to_item(after), current.version if current else None),
                    )
                )
            except ClientError as exc:
                if not _is_condition_failure(exc):
                    raise
                attempt += 1
                if (delay := self._may_retry(attempt)) is None:
                    raise MergeConflictError(
                        f"race {delta.race_id}: the summary kept changing under us, giving up for now"
                    ) from exc
                self._sleep(delay)
                continue
            return after, 1

    def _read_buckets(
        self, race_id: int, bucket_ids: list[int]
    ) -> dict[int, tuple[int, dict[int, RacerScore]]]:
        """The given buckets as (version, scores), read consistently."""
        keys = [{"pk": s(race_pk(race_id)), "sk": s(bucket_sk(b))} for b in bucket_ids]
        return {
            int(item["bucket"]["N"]): (int(item["version"]["N"]), bucket_scores(item))
            for item in self._batch_get(keys)
        }

    @staticmethod
    def _bucket_item(delta: RaceDelta, bucket: int, change: BucketChange, version: int) -> Item:
        item = {
            "pk": s(race_pk(delta.race_id)),
            "sk": s(bucket_sk(bucket)),
            "raceId": n(delta.race_id),
            "classId": n(delta.class_id),
            "bucket": n(bucket),
            "version": n(version),
            "fmt": n(BUCKET_FORMAT),
            "racers": {"B": encode_scores(change.scores)},
        }
        # MAX_SECOND and MAX_NAME_LENGTH keep a bucket under the limit even uncompressed; should that
        # ever stop holding, say so plainly rather than send a write DynamoDB refuses.
        if (size := item_size(item)) > MAX_ITEM_BYTES:
            raise ItemTooLargeError(f"race {delta.race_id} bucket {bucket} would be {size} bytes")
        return item

    def _versioned_put(self, item: Item, expected_version: int | None) -> dict[str, Any]:
        """PutItem arguments that succeed only if the item is still at ``expected_version``."""
        if expected_version is None:
            return {"TableName": self._table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        return {
            "TableName": self._table,
            "Item": item,
            "ConditionExpression": "version = :expected",
            "ExpressionAttributeValues": {":expected": n(expected_version)},
        }

    # -- results and closing ------------------------------------------------------------------------

    def record_results(self, results: Sequence[FinalResult]) -> int:
        """Offer personal bests (keep-best per class and racer); returns how many improved.

        Read first, write only improvements: the stored bests are read in BatchGetItem pages of 100
        keys, and only the racers whose new total beats theirs are written, each with its own
        conditional PutItem (keep-best stays atomic per item against any concurrent writer: another
        race of the class, the closer, a retry). The read may be eventually consistent: a best only
        ever grows, so a stale read shows a lower best and at worst sends a write that the condition
        refuses; it never skips a write that was needed. Replays read their own earlier writes and
        write nothing.

        Why not TransactWriteItems (100 conditional writes a call): it costs twice the write units,
        one failed condition cancels the other 99 (a retry per cancellation), and moto, which serves
        the table locally, copies every table the transaction touches before applying it, which
        makes it slower than single writes once the table holds a few thousand items. Why not a
        consumer of the table's stream: it would need its own function, mapping, alarms and a
        second reader on the stream, and 'offered before the bucket is written' would become 'the
        stream is read within its 24 hours'; the reads below keep the simpler guarantee.

        Reads and writes run on a bounded pool (``pb_concurrency``): a class's bests share one
        partition key, which takes about 1,000 writes/s, so more in flight only buys throttling.
        """
        offers: dict[tuple[int, int], FinalResult] = {}
        for result in results:
            key = (result.class_id, result.racer_id)
            if key not in offers or offers[key].total < result.total:
                offers[key] = result  # one write per item, the racer's best of this call
        if not offers:
            return 0
        stored = self._stored_bests(list(offers))
        improving = [r for key, r in offers.items() if key not in stored or stored[key] < r.total]
        return sum(self._map(self._offer_best, improving))

    def _stored_bests(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], int]:
        """A lower bound of each stored best (ten-thousandths) of these (classId, racerId) pairs.

        Only ``sk`` and ``best`` are read (each page holds one class), which halves what a page
        carries. Without the item's ``scale`` a legacy best in hundredths reads as ten-thousandths,
        i.e. 100 times too low: a lower bound, so it can only cause a write the condition decides.
        """

        def read(page: tuple[int, Sequence[int]]) -> list[tuple[tuple[int, int], int]]:
            class_id, racer_ids = page
            request = {
                "Keys": [{"pk": s(class_pk(class_id)), "sk": s(pb_sk(r))} for r in racer_ids],
                "ProjectionExpression": "sk, best",
            }
            return [
                ((class_id, int(item["sk"]["S"].removeprefix(PB_PREFIX))), int(item["best"]["N"]))
                for item in self._batch_get_pages([request])
                if "best" in item
            ]

        by_class: dict[int, list[int]] = {}
        for class_id, racer_id in keys:
            by_class.setdefault(class_id, []).append(racer_id)
        pages = [
            (class_id, racers[i : i + _BATCH_GET_KEYS])
            for class_id, racers in by_class.items()
            for i in range(0, len(racers), _BATCH_GET_KEYS)
        ]
        return {key: best for found in self._map(read, pages) for key, best in found}

    def _offer_best(self, result: FinalResult) -> bool:
        """One keep-best conditional put; False when the stored best is at least as good."""
        item = {
            "pk": s(class_pk(result.class_id)),
            "sk": s(pb_sk(result.racer_id)),
            "best": n(result.total),
            "scale": n(PB_SCALE),
            "name": s(result.name),
            "raceId": n(result.race_id),
            "achievedAt": s(iso(result.achieved_at)),
            "classId": n(result.class_id),
            "racerId": n(result.racer_id),
            "gsi1pk": s(class_pk(result.class_id)),
            "gsi1sk": s(pb_rank_key(result.total, result.racer_id)),
        }
        try:
            # A put rather than an update: the item is ours whole, and DynamoDB bills both alike,
            # while moto (local) spends most of an UpdateItem validating its nine SET clauses.
            self._call(
                lambda: self._ddb.put_item(
                    TableName=self._table,
                    Item=item,
                    # An item without a scale holds hundredths: it is compared in its own unit.
                    ConditionExpression=(
                        "attribute_not_exists(best) OR (attribute_exists(#scale) AND best < :best) "
                        "OR (attribute_not_exists(#scale) AND best < :legacy)"
                    ),
                    ExpressionAttributeNames={"#scale": "scale"},
                    ExpressionAttributeValues={
                        ":best": n(result.total),
                        ":legacy": n(legacy_pb_bound(result.total)),
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

    # -- the consumers' progress -----------------------------------------------------------------

    def record_progress(self, progress: ShardProgress) -> None:
        """Record how far a consumer has read a shard; its ``delivered_through`` only moves forward."""
        key = {"pk": s(_PROGRESS_PK), "sk": s(_SHARD_PREFIX + progress.shard_id)}
        checked = {":checked": s(iso(progress.checked_at))}
        try:
            self._call(
                lambda: self._ddb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET deliveredThrough = :through, checkedAt = :checked",
                    ConditionExpression=(
                        "attribute_not_exists(deliveredThrough) OR deliveredThrough <= :through"
                    ),
                    ExpressionAttributeValues={":through": n(progress.delivered_through), **checked},
                )
            )
        except ClientError as exc:
            if not _is_condition_failure(exc):
                raise
            # A retried batch read older records: the consumer is still alive, its position is not.
            self._call(
                lambda: self._ddb.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET checkedAt = :checked",
                    ExpressionAttributeValues=checked,
                )
            )

    def consumer_progress(self) -> list[ShardProgress]:
        """Every shard's recorded progress."""
        return [
            ShardProgress(
                shard_id=item["sk"]["S"].removeprefix(_SHARD_PREFIX),
                delivered_through=int(item["deliveredThrough"]["N"]),
                checked_at=parse_iso(item["checkedAt"]["S"]),
            )
            for item in self._query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": s(_PROGRESS_PK)},
                ConsistentRead=True,
            )
        ]

    # -- plumbing -----------------------------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run a DynamoDB call, retrying throttling and transient faults with jittered back-off."""
        attempt = 0
        while True:
            try:
                return fn()
            except (ClientError, *_TRANSIENT_CONNECTION) as exc:
                if not _is_transient(exc):
                    raise
                attempt += 1
                if (delay := self._may_retry(attempt)) is None:
                    raise RetryBudgetExhaustedError(
                        f"DynamoDB still failing after {attempt} attempts: {exc}"
                    ) from exc
                self._sleep(delay)

    def _map(self, fn: Callable[[A], T], items: Sequence[A]) -> list[T]:
        """``fn`` over ``items`` on a pool of ``pb_concurrency`` threads (in line for one item)."""
        if len(items) <= 1 or self._pb_concurrency <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self._pb_concurrency, len(items))) as pool:
            return list(pool.map(fn, items))

    def _batch_get(self, keys: list[dict[str, Any]]) -> Iterable[Item]:
        """Consistent BatchGetItem in chunks of 100, following UnprocessedKeys with back-off."""
        return self._batch_get_pages(
            [
                {"Keys": keys[i : i + _BATCH_GET_KEYS], "ConsistentRead": True}
                for i in range(0, len(keys), _BATCH_GET_KEYS)
            ]
        )

    def _batch_get_pages(self, requests: Iterable[dict[str, Any]]) -> Iterator[Item]:
        """One BatchGetItem per request (its keys and read options), following UnprocessedKeys."""
        for request in requests:
            pending: dict[str, Any] = {self._table: request}
            attempt = 0
            while pending:
                response = self._call(partial(self._ddb.batch_get_item, RequestItems=pending))
                yield from response.get("Responses", {}).get(self._table, [])
                pending = response.get("UnprocessedKeys") or {}
                if pending:
                    attempt += 1
                    if (delay := self._may_retry(attempt)) is None:
                        raise RetryBudgetExhaustedError("DynamoDB kept returning unprocessed keys")
                    self._sleep(delay)

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
