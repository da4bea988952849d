"""Read-side queries on the race table: race summaries and scores, race listings, class boards.

Pages are keyset pages: the caller passes the sort key of the last row it has, and each query's key
condition starts strictly after it. That is what DynamoDB's ``ExclusiveStartKey`` would do, but
expressed on the domain's own keys, so

* listing every race can merge the two ByStatus partitions (live, final) newest-first with one bound,
* a race that moves from live to final between two pages is neither repeated nor skipped (its
  (start, raceId), which the bound is on, does not change), and
* a cursor never has to carry the table's key layout.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from leaderboard.adapters.dynamodb import DynamoRaceStore
from leaderboard.adapters.items import (
    BY_CLASS_INDEX,
    BY_STATUS_INDEX,
    META_SK,
    PB_PREFIX,
    RACE_GSI_PREFIX,
    Item,
    RaceListKey,
    class_pk,
    parse_iso,
    pb_rank_key,
    personal_best_total,
    race_from_item,
    race_list_key,
    race_pk,
    race_sk_before,
    s,
)
from leaderboard.domain.race import FinalResult, RaceSummary
from leaderboard.domain.scoring import RacerScore

# Upper bounds for BETWEEN: the character after '#' sorts after every "PB#..." / "RACE#..." key and
# before the next prefix, so the range holds exactly one kind of item of the ByClass partition.
_PB_END = PB_PREFIX[:-1] + chr(ord(PB_PREFIX[-1]) + 1)
_RACE_END = RACE_GSI_PREFIX[:-1] + chr(ord(RACE_GSI_PREFIX[-1]) + 1)
_STATUSES = ("live", "final")
# The summary fields the API shows. The item also holds writers' bookkeeping (e.g. per-bucket counts)
# that grows with the race; projecting it away keeps reads small.
_SUMMARY_ATTRIBUTES = ("raceId", "classId", "racers", "finishedRacers", "updatedAt", "version", "closed")


def _projection(names: tuple[str, ...]) -> dict[str, Any]:
    """ProjectionExpression arguments; names go through placeholders as some may be reserved words."""
    return {
        "ProjectionExpression": ", ".join(f"#p{i}" for i in range(len(names))),
        "ExpressionAttributeNames": {f"#p{i}": name for i, name in enumerate(names)},
    }


class DynamoLeaderboardQueries:
    """Everything the API reads: summaries, scores, and the GSI queries behind lists and boards."""

    def __init__(self, client: Any, table_name: str) -> None:
        """Use ``client`` (a boto3 DynamoDB client, retries configured on it) on ``table_name``."""
        self._ddb = client
        self._table = table_name
        self._store = DynamoRaceStore(client, table_name)

    def race_version(self, race_id: int) -> int | None:
        """The race summary's version alone (every write to the race bumps it), or None when unknown.

        This is the per-request read of a warm API: the smallest read that says whether a cached
        ranking is still current. Consistent, so a write acknowledged to a client is seen.
        """
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": s(race_pk(race_id)), "sk": s(META_SK)},
            ConsistentRead=True,
            **_projection(("version",)),
        ).get("Item")
        return int(item["version"]["N"]) if item else None

    def get_race(self, race_id: int) -> RaceSummary | None:
        """The race's summary, or None when unknown (consistent read)."""
        item = self._ddb.get_item(
            TableName=self._table,
            Key={"pk": s(race_pk(race_id)), "sk": s(META_SK)},
            ConsistentRead=True,
            **_projection(_SUMMARY_ATTRIBUTES),
        ).get("Item")
        return race_from_item(item) if item else None

    def load_scores(self, race_id: int) -> list[RacerScore]:
        """Every racer's stored score in the race."""
        return self._store.load_scores(race_id)

    def races(
        self, class_id: int | None, before: RaceListKey | None, limit: int
    ) -> list[tuple[RaceListKey, RaceSummary]]:
        """Up to ``limit`` races listed after ``before`` (all when None), newest start first, each with
        its list key (the next page's ``before``).

        With a class, one query on ByClass. Without, ByStatus's live and final partitions are read
        newest-first side by side and merged, so the list is one order across statuses.
        """
        upper = race_sk_before(before) if before is not None else _RACE_END
        if upper is None:
            return []
        bounds = {":lo": s(RACE_GSI_PREFIX), ":hi": s(upper)}
        if class_id is not None:
            items = self._query(
                limit,
                IndexName=BY_CLASS_INDEX,
                KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi",
                ExpressionAttributeValues={":pk": s(class_pk(class_id)), **bounds},
                ScanIndexForward=False,
                **_projection((*_SUMMARY_ATTRIBUTES, "gsi1sk")),
            )
            return [(race_list_key(item["gsi1sk"]["S"]), race_from_item(item)) for item in items]
        streams = [
            (
                (race_list_key(item["gsi2sk"]["S"]), race_from_item(item))
                for item in self._query(
                    limit,
                    IndexName=BY_STATUS_INDEX,
                    KeyConditionExpression="gsi2pk = :pk AND gsi2sk BETWEEN :lo AND :hi",
                    ExpressionAttributeValues={":pk": s(f"STATUS#{status}"), **bounds},
                    ScanIndexForward=False,
                    **_projection((*_SUMMARY_ATTRIBUTES, "gsi2sk")),
                )
            )
            for status in _STATUSES
        ]
        races: list[tuple[RaceListKey, RaceSummary]] = []
        seen: set[int] = set()
        # The index is eventually consistent: a race changing status can briefly sit in both.
        for key, race in heapq.merge(*streams, key=lambda pair: pair[0], reverse=True):
            if race.race_id in seen:
                continue
            seen.add(race.race_id)
            races.append((key, race))
            if len(races) == limit:
                break
        return races

    def personal_bests(self, class_id: int, after: tuple[int, int] | None, limit: int) -> list[FinalResult]:
        """Up to ``limit`` personal bests of the class, best first (ties by racerId), after ``after``.

        ``after`` is the (best, racerId) of the last row already seen. Rank keys are fixed width, so
        the first key strictly after it is the same best with the next racerId.
        """
        lower = pb_rank_key(after[0], after[1] + 1) if after is not None else PB_PREFIX
        items = self._query(
            limit,
            IndexName=BY_CLASS_INDEX,
            KeyConditionExpression="gsi1pk = :pk AND gsi1sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":pk": s(class_pk(class_id)), ":lo": s(lower), ":hi": s(_PB_END)},
        )
        return [personal_best_from_item(item) for item in items]

    def _query(self, limit: int, **kwargs: Any) -> Iterator[Item]:
        """Items of a query, page after page, stopping after ``limit`` items."""
        remaining = limit
        start: dict[str, Any] | None = None
        while remaining > 0:
            args = dict(kwargs, TableName=self._table, Limit=remaining)
            if start:
                args["ExclusiveStartKey"] = start
            page = self._ddb.query(**args)
            items = page.get("Items", [])
            yield from items
            remaining -= len(items)
            start = page.get("LastEvaluatedKey")
            if not start:
                return


def personal_best_from_item(item: Item) -> FinalResult:
    """A class personal-best item as the result that set it."""
    return FinalResult(
        class_id=int(item["classId"]["N"]),
        racer_id=int(item["racerId"]["N"]),
        name=item["name"]["S"],
        race_id=int(item["raceId"]["N"]),
        total=personal_best_total(item),
        achieved_at=parse_iso(item["achievedAt"]["S"]),
    )
