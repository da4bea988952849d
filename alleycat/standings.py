"""Live standings from the race topics over MQTT-over-WebSocket (the same path browsers use)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass
class RaceBoard:
    """The latest standings message received for one race."""

    race_id: int
    body: dict[str, Any] = field(default_factory=dict)
    received_at: float = 0.0  # time.time() of the newest message
    updates: int = 0
    # Seconds from the newest racer message in an update to its arrival here (freshness).
    lags: list[float] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``live``, ``final`` or ``waiting`` before the first update."""
        return str(self.body.get("status", "waiting"))


class StandingsFeed:
    """Subscribes to races' standings topics and keeps the newest message of each."""

    def __init__(
        self,
        ws_url: str,
        topics: dict[int, str],
        *,
        client_id: str = "alleycat-viewer",
        local_identity: str | None = None,
    ) -> None:
        """Watch ``topics`` (raceId → topic) on the broker at ``ws_url`` (ws:// or signed wss://).

        ``local_identity``: connect to localcloud's broker as that viewer identity (MQTT user name
        ``cognito:<identity>``, client id ``<identity>-...``), which its IoT policies require.
        """
        if local_identity is not None:
            client_id = local_identity
        self._url = urlsplit(ws_url)
        self._topics = topics
        self._lock = threading.Lock()
        self.boards: dict[int, RaceBoard] = {race_id: RaceBoard(race_id) for race_id in topics}
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{client_id}-{int(time.time() * 1000) % 10**8}",
            transport="websockets",
        )
        path = self._url.path or "/mqtt"
        if self._url.query:
            path += "?" + self._url.query
        self._client.ws_set_options(path=path)
        if local_identity is not None:
            self._client.username_pw_set(f"cognito:{local_identity}")
        if self._url.scheme == "wss":
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._topic_race = {topic: race_id for race_id, topic in topics.items()}

    def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; raises TimeoutError when the broker does not answer."""
        port = self._url.port or (443 if self._url.scheme == "wss" else 80)
        self._client.connect(self._url.hostname or "127.0.0.1", port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise TimeoutError(f"no MQTT subscription on {self._url.hostname}:{port} within {timeout:.0f} s")

    def stop(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def snapshot(self) -> dict[int, RaceBoard]:
        """A consistent copy of the boards."""
        with self._lock:
            return {
                race_id: RaceBoard(b.race_id, dict(b.body), b.received_at, b.updates, list(b.lags))
                for race_id, b in self.boards.items()
            }

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, 1) for topic in self._topics.values()])

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        race_id = self._topic_race.get(message.topic)
        if race_id is None:
            return
        try:
            body = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            return
        now = time.time()
        with self._lock:
            board = self.boards[race_id]
            # Updates can arrive out of order; the summary version says which is newer.
            if board.body and body.get("version", 0) < board.body.get("version", 0):
                return
            board.body, board.received_at = body, now
            board.updates += 1
            newest = body.get("lastDeviceTimestamp")
            if newest:
                board.lags.append(max(0.0, now - newest / 1000))
