"""The mapping engine: keeps one worker per enabled Kinesis / DynamoDB Streams mapping."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from localcloud.invocation import Invoker

from . import moto_compat
from .checkpoint import CheckpointStore
from .config import MappingConfig
from .settings import Clock, EngineSettings, SystemClock
from .sources import make_client
from .stats import ShardStats
from .worker import MappingWorker

_log = logging.getLogger(__name__)


class MappingEngine:
    """Drives Lambda event source mappings for Kinesis and DynamoDB Streams with AWS semantics.

    Mappings are read from Lambda ListEventSourceMappings at ``endpoint_url``; SQS mappings are
    ignored. Checkpoints (and open tumbling windows) are kept under ``state_dir`` when given.
    """

    def __init__(  # noqa: PLR0917 - the constructor's positional form is the published API
        self,
        endpoint_url: str,
        region: str,
        invoker: Invoker,
        state_dir: Path | None = None,
        settings: EngineSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.invoker = invoker
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.settings = settings or EngineSettings()
        self.clock = clock or SystemClock()
        self._workers: dict[str, MappingWorker] = {}
        # Checkpoints outlive a mapping's worker (disable/enable, update) even without state_dir.
        self._stores: dict[str, CheckpointStore] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Sync mappings now and keep syncing (about once per second) on a background thread."""
        # moto's own stream triggers would swallow DynamoDB stream records; switch them off.
        moto_compat.apply()
        self._stopping.clear()
        self.sync()
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="esm-engine", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop every worker and persist checkpoints."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.stop()

    def _run(self) -> None:
        while not self._stopping.wait(self.settings.sync_interval_s):
            try:
                self.sync()
            except Exception:
                _log.exception("event source mapping sync failed")

    # -- mappings ------------------------------------------------------------------------------

    def _lambda(self) -> Any:
        if self._client is None:
            self._client = make_client("lambda", self.endpoint_url, self.region)
        return self._client

    def _list_mappings(self) -> list[dict[str, Any]]:
        mappings: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self._lambda().list_event_source_mappings(**kwargs)
            mappings.extend(page.get("EventSourceMappings", []))
            marker = page.get("NextMarker")
            if not marker:
                return mappings
            kwargs = {"Marker": marker}

    def sync(self) -> None:
        """Re-read the mappings: start new or enabled ones, restart updated ones, stop the rest."""
        moto_compat.apply()
        with self._lock:
            try:
                raw = self._list_mappings()
            except Exception:
                _log.exception("ListEventSourceMappings failed")
                return
            wanted: dict[str, MappingConfig] = {}
            for entry in raw:
                config = MappingConfig.from_api(entry)
                if config is not None and config.enabled:
                    wanted[config.uuid] = config
            for uuid, worker in list(self._workers.items()):
                config = wanted.get(uuid)
                if config is None or config.fingerprint() != worker.config.fingerprint():
                    _log.info("mapping %s removed, disabled or updated; stopping its worker", uuid)
                    worker.stop()
                    del self._workers[uuid]
            for uuid, config in wanted.items():
                if uuid in self._workers:
                    continue
                store = self._stores.get(uuid)
                if store is None:
                    store = CheckpointStore(self.state_dir, uuid, config.event_source_arn)
                    self._stores[uuid] = store
                worker = MappingWorker(
                    config,
                    endpoint_url=self.endpoint_url,
                    invoker=self.invoker,
                    state_dir=self.state_dir,
                    settings=self.settings,
                    clock=self.clock,
                    store=store,
                )
                self._workers[uuid] = worker
                worker.start()

    # -- observation ---------------------------------------------------------------------------

    def wait_until_idle(self, timeout: float = 30.0, include_windows: bool = False) -> bool:
        """Block until every enabled mapping has read every shard to the current tip.

        Idle means: mappings re-synced, shards re-listed and each shard polled empty after this call
        began, no batch in flight or awaiting retry, and (``include_windows``) no tumbling window
        still open. Returns False when ``timeout`` passes first.
        """
        since = time.monotonic()
        deadline = since + timeout
        self.sync()
        while time.monotonic() < deadline:
            with self._lock:
                workers = list(self._workers.values())
            if all(w.idle_since(since, include_windows) for w in workers):
                return True
            time.sleep(0.01)
        return False

    def stats(self) -> list[ShardStats]:
        """Per mapping and shard counters."""
        with self._lock:
            workers = list(self._workers.values())
        result: list[ShardStats] = []
        for worker in workers:
            result.extend(worker.stats())
        return sorted(result, key=lambda s: (s.mapping_uuid, s.shard_id))
