"""The table's item layout: keys and attribute encoding, shared by every reader and writer.

One table, keys ``pk``/``sk`` (strings), two GSIs:

======================  ====================  ==========================================
item                    pk / sk               GSI keys
======================  ====================  ==========================================
race summary            RACE#<id> / META      ByClass: CLASS#<class> / RACE#<id:012>
                                              ByStatus: STATUS#<live|final> / RACE#<id:012>
standings bucket        RACE#<id> / BUCKET#<b:06>   (racers b*100 .. b*100+99, a map)
class personal best     CLASS#<class> / PB#<racer:012>   ByClass: CLASS#<class> / PB#<rankkey>
======================  ====================  ==========================================
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from leaderboard.domain.race import BucketCount, RaceSummary
from leaderboard.domain.scoring import RacerScore, seen_from_bytes, seen_to_bytes

Item = dict[str, Any]  # a DynamoDB item in the low-level attribute-value format

META_SK = "META"
BUCKET_PREFIX = "BUCKET#"
PB_PREFIX = "PB#"
RACE_GSI_PREFIX = "RACE#"
BY_CLASS_INDEX = "ByClass"
BY_STATUS_INDEX = "ByStatus"
# Personal bests sort ascending by (MAX - best, racerId) so the GSI returns the best first and ties in
# racerId order, matching the ranking contract.
_PB_RANK_BASE = 10**15


# DynamoDB refuses (permanently, with a ValidationException) an item over 400 KB.
MAX_ITEM_BYTES = 400 * 1024


def item_size(item: Item) -> int:
    """The item's size as DynamoDB counts it against the 400 KB limit: attribute names plus values.

    Strings count their UTF-8 bytes, binaries their raw bytes (not the base64 on the wire), numbers
    one byte per two significant digits plus one, booleans and nulls one byte; a list or map costs
    three bytes plus one per element, plus its elements (and, for a map, their names).
    """
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw.encode())
    if kind == "B":
        return len(raw)
    if kind == "N":
        digits = raw.lstrip("-").replace(".", "").strip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in raw.items())
    if kind in ("SS", "BS"):
        return sum(len(v.encode()) if kind == "SS" else len(v) for v in raw)
    if kind == "NS":
        return sum(_value_size({"N": v}) for v in raw)
    raise ValueError(f"unknown attribute type {kind}")


def race_pk(race_id: int) -> str:
    """Partition key of a race's items."""
    return f"RACE#{race_id}"


def bucket_sk(bucket: int) -> str:
    """Sort key of a standings bucket."""
    return f"{BUCKET_PREFIX}{bucket:06d}"


def class_pk(class_id: int) -> str:
    """Partition key of a class's items (and the ByClass index)."""
    return f"CLASS#{class_id}"


# Race list keys: (start, raceId), start being the race's first device timestamp in epoch ms. Items
# written before races were listed by start time carry "RACE#<raceId:012d>"; the "T" makes every
# timed key sort after them, so such a race lists after all timed races (by raceId) until its next
# write gives it a timed key. Its list key has start LEGACY_START.
RACE_TIMED_PREFIX = RACE_GSI_PREFIX + "T"
LEGACY_START = -1
_START_DIGITS = 15
_ID_DIGITS = 19
_MAX_LIST_ID = 10**_ID_DIGITS - 1

RaceListKey = tuple[int, int]
"""Where a race sits in the newest-first race lists: (start epoch ms or LEGACY_START, raceId)."""


def race_gsi_sk(race_id: int, start_ms: int) -> str:
    """ByClass/ByStatus sort key of a race summary: races in (start time, raceId) order."""
    return f"{RACE_TIMED_PREFIX}{max(start_ms, 0):0{_START_DIGITS}d}#{race_id:0{_ID_DIGITS}d}"


def legacy_race_gsi_sk(race_id: int) -> str:
    """The sort key race summaries carried before races were listed by start time."""
    return f"{RACE_GSI_PREFIX}{race_id:012d}"


def race_list_key(sort_key: str) -> RaceListKey:
    """The list key of a race summary's ByClass/ByStatus sort key (either format)."""
    if sort_key.startswith(RACE_TIMED_PREFIX):
        start, _, race_id = sort_key[len(RACE_TIMED_PREFIX) :].partition("#")
        return int(start), int(race_id)
    return LEGACY_START, int(sort_key[len(RACE_GSI_PREFIX) :])


def race_sk_before(key: RaceListKey) -> str | None:
    """The greatest sort key strictly below the race with list key ``key`` (inclusive bound for
    BETWEEN), or None when nothing sorts below it."""
    start, race_id = key
    if start < 0:
        return legacy_race_gsi_sk(race_id - 1) if race_id > 0 else None
    if race_id > 0:
        return race_gsi_sk(race_id - 1, start)
    if start > 0:
        return race_gsi_sk(_MAX_LIST_ID, start - 1)
    # Below the first timed key: every legacy key.
    return RACE_GSI_PREFIX + "9" * 12


def pb_sk(racer_id: int) -> str:
    """Sort key of a racer's personal best in a class."""
    return f"{PB_PREFIX}{racer_id:012d}"


def pb_rank_key(best: int, racer_id: int) -> str:
    """ByClass sort key of a personal best: best first, then racerId ascending."""
    return f"{PB_PREFIX}{_PB_RANK_BASE - best:016d}#{racer_id:012d}"


def iso(ts: datetime) -> str:
    """UTC ISO-8601 with milliseconds and a Z, the API's timestamp format."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Inverse of :func:`iso`."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def n(value: int | float) -> dict[str, str]:
    """A number attribute."""
    return {"N": str(value)}


def s(value: str) -> dict[str, str]:
    """A string attribute."""
    return {"S": value}


def race_to_item(race: RaceSummary) -> Item:
    """The race summary item."""
    status = race.status
    return {
        "pk": s(race_pk(race.race_id)),
        "sk": s(META_SK),
        "raceId": n(race.race_id),
        "classId": n(race.class_id),
        "status": s(status),
        "racers": n(race.racers),
        "finishedRacers": n(race.finished_racers),
        "updatedAt": s(iso(race.updated_at)),
        "version": n(race.version),
        "closed": {"BOOL": race.closed},
        "firstDeviceTimestamp": n(race.first_device_ts),
        "lastDeviceTimestamp": n(race.last_device_ts),
        "maxSecond": n(race.max_second),
        "buckets": {
            "M": {str(b): {"L": [n(c.racers), n(c.finished), n(c.version)]} for b, c in race.buckets.items()}
        },
        "gsi1pk": s(class_pk(race.class_id)),
        "gsi1sk": s(race_gsi_sk(race.race_id, race.first_device_ts)),
        "gsi2pk": s(f"STATUS#{status}"),
        "gsi2sk": s(race_gsi_sk(race.race_id, race.first_device_ts)),
    }


def race_from_item(item: Item) -> RaceSummary:
    """Inverse of :func:`race_to_item`."""
    return RaceSummary(
        race_id=int(item["raceId"]["N"]),
        class_id=int(item["classId"]["N"]),
        racers=int(item["racers"]["N"]),
        finished_racers=int(item["finishedRacers"]["N"]),
        updated_at=parse_iso(item["updatedAt"]["S"]),
        version=int(item["version"]["N"]),
        closed=bool(item.get("closed", {}).get("BOOL", False)),
        first_device_ts=int(item.get("firstDeviceTimestamp", {"N": "0"})["N"]),
        last_device_ts=int(item.get("lastDeviceTimestamp", {"N": "0"})["N"]),
        max_second=int(item.get("maxSecond", {"N": "0"})["N"]),
        buckets={
            int(b): BucketCount(*(int(v["N"]) for v in c["L"]))
            for b, c in item.get("buckets", {}).get("M", {}).items()
        },
    )


# Format 2 keeps totals and outputs in ten-thousandths. Format 1 kept hundredths; a format 1 bucket
# is still read (its values scaled up exactly, as they were rounded to hundredths) and rewritten as
# format 2 the next time its racers score.
BUCKET_FORMAT = 2
_BUCKET_SCALES = {1: 100, BUCKET_FORMAT: 1}  # format -> factor from its unit to ten-thousandths

# Personal-best items carry their unit: ``scale`` is the number of stored units per output unit.
# Items written before it existed have none and hold hundredths.
PB_SCALE = 10_000
LEGACY_PB_SCALE = 100


def encode_scores(scores: Mapping[int, RacerScore]) -> bytes:
    """A bucket's racers as one compact binary attribute.

    One zlib-compressed JSON array per bucket rather than a map of maps: DynamoDB bills by bytes and
    attribute names count, and the seconds bitmaps (runs of set bits) compress well. Each racer is
    ``[racerId, name, total, lastSecond, lastOutput, final, seenBitmapHex]``, scores in
    ten-thousandths (format 2).
    """
    rows = [
        [
            sc.racer_id,
            sc.name,
            sc.total,
            sc.last_second,
            sc.last_output,
            sc.final,
            seen_to_bytes(sc.seen).hex(),
        ]
        for sc in scores.values()
    ]
    return zlib.compress(orjson.dumps(rows), 1)


def decode_scores(data: bytes, scale: int = 1) -> dict[int, RacerScore]:
    """Inverse of :func:`encode_scores`; ``scale`` turns an older format's unit into ten-thousandths."""
    scores: dict[int, RacerScore] = {}
    for racer_id, name, total, last_second, last_output, final, seen in orjson.loads(zlib.decompress(data)):
        scores[racer_id] = RacerScore(
            racer_id=racer_id,
            name=name,
            total=total * scale,
            seen=seen_from_bytes(bytes.fromhex(seen)),
            last_second=last_second,
            last_output=last_output * scale,
            final=final,
        )
    return scores


def bucket_scores(item: Item) -> dict[int, RacerScore]:
    """The racers stored in a bucket item."""
    fmt = int(item.get("fmt", {"N": "0"})["N"])
    scale = _BUCKET_SCALES.get(fmt)
    if scale is None:
        raise ValueError(f"bucket {item.get('sk')} has unknown format {fmt}")
    return decode_scores(bytes(item["racers"]["B"]), scale)


def personal_best_total(item: Item) -> int:
    """A personal-best item's ``best`` in ten-thousandths, whichever unit the item was written in."""
    scale = int(item.get("scale", {"N": str(LEGACY_PB_SCALE)})["N"])
    return int(item["best"]["N"]) * (PB_SCALE // scale)


def legacy_pb_bound(total: int) -> int:
    """The hundredths a legacy personal best must be below for ``total`` (ten-thousandths) to beat it.

    A legacy best of ``h`` hundredths is ``100 * h`` ten-thousandths, and ``100 * h < total`` holds
    exactly when ``h < ceil(total / 100)``.
    """
    return -(-total // (PB_SCALE // LEGACY_PB_SCALE))
