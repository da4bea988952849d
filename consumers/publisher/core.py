"""The publisher's logic: a race summary changed → push its live standings to IoT topics."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from leaderboard.adapters.items import META_SK, iso, race_from_item
from leaderboard.domain import RaceStore, RaceSummary, Standing, e4_to_output, rank_scores

Publish = Callable[[str, bytes], None]


def standings_topic(prefix: str, race_id: int) -> str:
    """The per-race standings topic: ``alleycat/races/{raceId}/standings``."""
    return f"{prefix}/races/{race_id}/standings"


def class_topic(prefix: str, class_id: int) -> str:
    """The per-class topic announcing races and their status changes."""
    return f"{prefix}/classes/{class_id}/races"


def standing_json(standing: Standing) -> dict[str, Any]:
    """One row as the API and the topics show it."""
    return {
        "rank": standing.rank,
        "racerId": standing.racer_id,
        "name": standing.name,
        "totalOutput": e4_to_output(standing.total),
        "output": e4_to_output(standing.output),
        "second": standing.second,
    }


def race_json(race: RaceSummary) -> dict[str, Any]:
    """A race as announced on the class topic."""
    return {
        "raceId": race.race_id,
        "classId": race.class_id,
        "status": race.status,
        "racers": race.racers,
        "updatedAt": iso(race.updated_at),
    }


def standings_message(race: RaceSummary, standings: list[Standing], top_n: int) -> bytes:
    """The standings topic payload: the race and its top ``top_n`` racers (well under 128 KB)."""
    body = race_json(race) | {
        "version": race.version,
        "second": race.max_second,
        "lastDeviceTimestamp": race.last_device_ts,
        "standings": [standing_json(s) for s in standings[:top_n]],
    }
    return orjson.dumps(body)


@dataclass
class PublishSummary:
    """What one invocation published."""

    standings_published: int = 0
    announcements: int = 0
    freshness_ms: list[int] | None = None


class StandingsPublisher:
    """Publishes standings for every race summary change in a DynamoDB Streams batch."""

    def __init__(
        self,
        store: RaceStore,
        publish: Publish,
        *,
        topic_prefix: str,
        top_n: int,
        now_ms: Callable[[], int],
    ) -> None:
        """Read standings from ``store`` and send them with ``publish(topic, payload)``."""
        self._store = store
        self._publish = publish
        self._prefix = topic_prefix
        self._top_n = top_n
        self._now_ms = now_ms

    def handle(self, event: Mapping[str, Any]) -> tuple[dict[str, Any], PublishSummary]:
        """Process a DynamoDB Streams batch; failed races are reported as batch item failures.

        Each race is published once per batch, from its newest summary image in the batch: the
        image is the summary as written (no read of it again), and the standings are read once,
        after that write. A status change is announced for every record that carries one.
        """
        summary = PublishSummary(freshness_ms=[])
        records = list(event.get("Records") or [])
        newest = _newest_versions(records)
        published_versions: dict[int, int] = {}

        def on_record(record: DynamoDBRecord) -> None:
            changed = _summary_change(record)
            if changed is None:
                return
            race = changed
            # An older change of a race whose newer change is in this batch (or was published from
            # it already): the newer one publishes, with standings read after it was written.
            latest = max(newest.get(race.race_id, -1), published_versions.get(race.race_id, -1))
            if race.version >= latest and published_versions.get(race.race_id, -1) < race.version:
                standings = rank_scores(self._store.load_scores(race.race_id))
                self._publish(
                    standings_topic(self._prefix, race.race_id),
                    standings_message(race, standings, self._top_n),
                )
                published_versions[race.race_id] = race.version
                summary.standings_published += 1
                if race.last_device_ts and summary.freshness_ms is not None:
                    summary.freshness_ms.append(max(0, self._now_ms() - race.last_device_ts))
            old_image = record.raw_event["dynamodb"].get("OldImage")
            old_status = race_from_item(old_image).status if old_image else None
            if old_status != changed.status:
                self._publish(class_topic(self._prefix, race.class_id), orjson.dumps(race_json(changed)))
                summary.announcements += 1

        # Reporting every record as failed equals raising (the whole batch is retried), but keeps
        # one response shape for the mapping.
        processor = BatchProcessor(event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False)
        with processor(records=records, handler=on_record):
            processor.process()
        return dict(processor.response()), summary


def _summary_change(record: DynamoDBRecord) -> RaceSummary | None:
    """The race summary a stream record writes, or None for bucket items, removals and the like."""
    if record.event_name == DynamoDBRecordEventName.REMOVE or record.dynamodb is None:
        return None
    keys = record.dynamodb.keys or {}
    if keys.get("sk") != META_SK:
        return None  # bucket items change with every window; the summary change is the signal
    new_image = record.raw_event["dynamodb"].get("NewImage")
    return race_from_item(new_image) if new_image else None


def _newest_versions(records: list[dict[str, Any]]) -> dict[int, int]:
    """Each race's newest summary version among the batch's records (unreadable ones skipped:
    the record handler reports them)."""
    newest: dict[int, int] = {}
    for raw in records:
        try:
            changed = _summary_change(DynamoDBRecord(raw))
        except Exception:  # reported as that record's failure when the handler meets it
            continue
        if changed is not None:
            newest[changed.race_id] = max(newest.get(changed.race_id, -1), changed.version)
    return newest
