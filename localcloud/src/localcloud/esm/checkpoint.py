"""Per-mapping, per-shard checkpoints, persisted atomically so a restarted engine resumes."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)


@dataclass
class ShardCheckpoint:
    """What has been consumed from one shard.

    ``sequence`` is the last sequence number whose record (and every record before it) was
    processed, filtered out or sent to the failure destination; reading resumes after it.
    ``start_timestamp`` remembers when a LATEST start first opened the shard, so a restart before
    any record was consumed resumes from that moment instead of from the new tip.
    ``window`` is the open tumbling window (start, state, ...), persisted with the position it
    belongs to.
    """

    sequence: str | None = None
    finished: bool = False
    start_timestamp: float | None = None
    window: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class CheckpointStore:
    """Checkpoints of one mapping; a JSON file under ``state_dir`` when one is given."""

    def __init__(self, state_dir: Path | None, mapping_uuid: str, event_source_arn: str) -> None:
        self._lock = threading.Lock()
        self._path = state_dir / "esm-checkpoints" / f"{mapping_uuid}.json" if state_dir else None
        self._source = event_source_arn
        self._shards: dict[str, ShardCheckpoint] = {}
        self._load()

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            raw = json.loads(self._path.read_text())
        except (OSError, ValueError):
            _log.exception("unreadable checkpoint file %s; starting from the mapping's position", self._path)
            return
        if raw.get("eventSourceArn") != self._source:
            return
        for shard_id, entry in (raw.get("shards") or {}).items():
            self._shards[shard_id] = ShardCheckpoint(
                sequence=entry.get("sequence"),
                finished=bool(entry.get("finished")),
                start_timestamp=entry.get("start_timestamp"),
                window=entry.get("window"),
                extra=entry.get("extra") or {},
            )

    def get(self, shard_id: str) -> ShardCheckpoint | None:
        """A copy of the shard's checkpoint, or None if the shard was never read."""
        with self._lock:
            found = self._shards.get(shard_id)
            return None if found is None else ShardCheckpoint(**asdict(found))

    def is_finished(self, shard_id: str) -> bool:
        """True once a closed shard was read to its end and everything in it was handled."""
        with self._lock:
            found = self._shards.get(shard_id)
            return bool(found and found.finished)

    def known(self, shard_id: str) -> bool:
        """True when the mapping has a checkpoint for the shard."""
        with self._lock:
            return shard_id in self._shards

    def put(self, shard_id: str, checkpoint: ShardCheckpoint) -> None:
        """Record and persist the shard's checkpoint."""
        with self._lock:
            self._shards[shard_id] = ShardCheckpoint(**asdict(checkpoint))
            self._persist()

    def _persist(self) -> None:
        if self._path is None:
            return
        document = {
            "eventSourceArn": self._source,
            "shards": {shard: asdict(cp) for shard, cp in sorted(self._shards.items())},
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Write-then-rename: a crash leaves either the old or the new file, never a torn one.
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=self._path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, separators=(",", ":"))
            os.replace(tmp, self._path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
