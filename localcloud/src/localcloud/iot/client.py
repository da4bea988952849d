"""A small blocking MQTT client (paho-mqtt) for tests, simulators and tools.

``MqttClient("ws://127.0.0.1:PORT/mqtt")`` or ``MqttClient("mqtt://127.0.0.1:PORT")``: connect,
subscribe (waiting for the broker's SUBACK), publish (waiting for PUBACK at QoS 1), and read the
received messages from a queue with a timeout.
"""

from __future__ import annotations

import queue
import threading
import uuid
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class MqttClientError(RuntimeError):
    """Connecting, subscribing or publishing failed or timed out."""


@dataclass(frozen=True)
class ReceivedMessage:
    """A message delivered to this client."""

    topic: str
    payload: bytes
    qos: int
    retain: bool


class MqttClient:
    """A connected MQTT 3.1.1 client over TCP (``mqtt://``) or WebSocket (``ws://``)."""

    def __init__(
        self,
        url: str,
        client_id: str | None = None,
        *,
        clean_session: bool = True,
        timeout: float = 5.0,
        username: str | None = None,
    ) -> None:
        """``username`` names the client's identity to a broker that applies IoT policies."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "ws") or parts.hostname is None or parts.port is None:
            raise ValueError(f"expected mqtt://host:port or ws://host:port/path, got {url!r}")
        self.url = url
        self.client_id = client_id or f"client-{uuid.uuid4().hex[:12]}"
        self.timeout = timeout
        self.messages: queue.Queue[ReceivedMessage] = queue.Queue()
        transport: Literal["websockets", "tcp"] = "websockets" if parts.scheme == "ws" else "tcp"
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            transport=transport,
            clean_session=clean_session,
        )
        if transport == "websockets":
            self._client.ws_set_options(path=parts.path or "/mqtt")
        if username is not None:
            self._client.username_pw_set(username)
        self._connected = threading.Event()
        self._connect_code: Any = None
        self._subacks: dict[int, threading.Event] = {}
        self._granted: dict[int, list[int]] = {}
        self._lock = threading.Lock()
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._host, self._port = parts.hostname, parts.port

    def connect(self) -> MqttClient:
        """Connect and wait for CONNACK."""
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(self.timeout):
            self._client.loop_stop()
            raise MqttClientError(f"no CONNACK from {self.url} within {self.timeout} s")
        if self._connect_code is not None and getattr(self._connect_code, "is_failure", False):
            raise MqttClientError(f"connection refused: {self._connect_code}")
        return self

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttClient:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def subscribe(self, topic_filter: str, qos: int = 0) -> int:
        """Subscribe and wait for SUBACK; return the granted QoS (0x80 means refused)."""
        with self._lock:
            result, mid = self._client.subscribe(topic_filter, qos)
            if result != paho.MQTT_ERR_SUCCESS or mid is None:
                raise MqttClientError(f"subscribe to {topic_filter!r} failed: {paho.error_string(result)}")
            event = self._subacks.setdefault(mid, threading.Event())
        if not event.wait(self.timeout):
            raise MqttClientError(f"no SUBACK for {topic_filter!r} within {self.timeout} s")
        return self._granted.pop(mid, [0x80])[0]

    def publish(self, topic: str, payload: bytes | str, qos: int = 0, retain: bool = False) -> None:
        """Publish; at QoS 1 wait for the broker's PUBACK."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise MqttClientError(f"publish to {topic!r} failed: {paho.error_string(info.rc)}")
        info.wait_for_publish(self.timeout)
        if not info.is_published():
            raise MqttClientError(f"publish to {topic!r} was not acknowledged within {self.timeout} s")

    def receive(self, timeout: float | None = None) -> ReceivedMessage:
        """The next received message; raise :class:`MqttClientError` after ``timeout`` seconds."""
        try:
            return self.messages.get(timeout=self.timeout if timeout is None else timeout)
        except queue.Empty as exc:
            raise MqttClientError("no message arrived in time") from exc

    def receive_many(self, count: int, timeout: float | None = None) -> list[ReceivedMessage]:
        """The next ``count`` messages, each within ``timeout``."""
        return [self.receive(timeout) for _ in range(count)]

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connect_code = reason_code
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.put(
            ReceivedMessage(message.topic, bytes(message.payload), int(message.qos), bool(message.retain))
        )

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        with self._lock:
            self._granted[mid] = [int(getattr(code, "value", code)) for code in reason_codes]
            self._subacks.setdefault(mid, threading.Event()).set()
