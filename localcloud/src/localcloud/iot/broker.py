"""An embedded MQTT 3.1.1 broker (amqtt) with TCP and WebSocket listeners, run on its own thread.

amqtt is asyncio-based; its event loop lives on a background thread so the rest of localcloud
(threads, blocking boto3 calls) can publish into it and stop it. Every message a client publishes
is also handed to ``on_message`` (the rules engine) through a small broker plugin, and
:meth:`MqttBroker.publish` does the same for in-process and data-plane publishes, so rules see
every message exactly once whatever its origin.

The WebSocket listener refuses a handshake whose ``Host`` is not a loopback name or whose ``Origin``
is a page from anywhere else (403): browsers let any web page open a WebSocket to 127.0.0.1, and
nothing else would stop a foreign page from subscribing here or publishing fake messages. Clients
that send no ``Origin`` (MQTT libraries, tools) are let through, as on the HTTP servers
(:mod:`localcloud.httpserver`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from typing import Any

import websockets
from amqtt.broker import Broker, ListenerType
from amqtt.plugins.base import BaseAuthPlugin, BasePlugin, BaseTopicPlugin
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from localcloud.httpserver import host_allowed
from localcloud.iot.messages import IotMessage
from localcloud.iot.policy import IotAccess
from localcloud.iot.topics import validate_topic

LOG = logging.getLogger(__name__)

MessageSink = Callable[[IotMessage], None]
Clock = Callable[[], float]


class BrokerStartError(RuntimeError):
    """The broker could not start (typically: a port is already taken)."""


@dataclass(frozen=True)
class RetainedMessage:
    """A retained message, as the data plane's GetRetainedMessage reports it."""

    topic: str
    payload: bytes
    qos: int
    last_modified_ms: int


class MessageTapPlugin(BasePlugin[Any]):  # type: ignore[misc]
    """Passes every message the broker accepts from a client to the attached callbacks.

    amqtt builds plugins itself from a dotted path, so the owner attaches its callbacks after the
    broker is constructed (:meth:`attach`).
    """

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self._on_message: Callable[[str, Any], None] | None = None
        self._on_retained: Callable[[Any], None] | None = None

    def attach(self, on_message: Callable[[str, Any], None], on_retained: Callable[[Any], None]) -> None:
        """Install the callbacks (called on the broker's loop)."""
        self._on_message = on_message
        self._on_retained = on_retained

    async def on_broker_message_broadcast(self, *, client_id: str, message: Any) -> None:
        """A client's PUBLISH passed the broker's checks and is being delivered."""
        if self._on_message is not None:
            self._on_message(client_id, message)

    async def on_broker_retained_message(self, *, client_id: str | None, retained_message: Any) -> None:
        """A retained message was stored or (empty payload) cleared."""
        if self._on_retained is not None:
            self._on_retained(retained_message)


PERSISTENT_SESSION_EXPIRY_S = 3600
# Seconds a WebSocket client gets to answer the close handshake when the broker stops.
_WS_CLOSE_TIMEOUT = 1.0


class AcceptAnyClientPlugin(BaseAuthPlugin):  # type: ignore[misc]
    """Lets in the clients the broker's :class:`IotAccess` allows (everyone when it has none).

    It never marks a session anonymous: amqtt drops anonymous persistent sessions on disconnect
    and queues nothing for them; AWS IoT keeps persistent sessions (and their QoS 1 messages) for
    an hour.
    """

    access: IotAccess | None = None

    async def authenticate(self, *, session: Any) -> bool:
        """``iot:Connect`` for the client's identity (its MQTT user name names it)."""
        if self.access is None:
            return True
        allowed = self.access.may_connect(session.username, session.client_id)
        if not allowed:
            LOG.warning(
                "refused MQTT client %r (user name %r): no identity allowed to connect",
                session.client_id,
                session.username,
            )
        return allowed


class PolicyTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    """Publish, subscribe and receive checked against the client's policy (all allowed without one)."""

    @dataclass
    class Config:
        """No options: the policy is attached by the broker (:attr:`access`)."""

    access: IotAccess | None = None

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Any = None
    ) -> bool:
        """Whether the client's policy allows ``action`` on ``topic`` (a filter, for subscribe)."""
        if self.access is None or session is None or topic is None:
            return True
        # Messages the broker itself publishes (data plane, rules) reach it as RECEIVE checks only.
        allowed = self.access.may(session.username, session.client_id, _IOT_ACTIONS[str(action)], topic)
        if not allowed and str(action) != "receive":
            LOG.warning("refused %s on %r for MQTT client %r", action, topic, session.client_id)
        return allowed


_IOT_ACTIONS = {"publish": "iot:Publish", "subscribe": "iot:Subscribe", "receive": "iot:Receive"}


def websocket_refusal(host: str | None, origin: str | None) -> str | None:
    """Why a WebSocket handshake must be refused (a foreign Host or a foreign page), or None."""
    if host is None or not host_allowed(host):
        return f"Host {host!r} is not a name of this machine"
    if origin is not None:
        scheme, _, rest = origin.partition("://")
        if scheme not in ("http", "https") or not host_allowed(rest.split("/", 1)[0]):
            return f"Origin {origin!r} may not connect here"
    return None


def _check_handshake(connection: ServerConnection, request: Request) -> Response | None:
    refusal = websocket_refusal(request.headers.get("Host"), request.headers.get("Origin"))
    if refusal is None:
        return None
    LOG.warning("refused a WebSocket connection: %s", refusal)
    return connection.respond(HTTPStatus.FORBIDDEN, refusal + "\n")


class _LocalBroker(Broker):  # type: ignore[misc]
    """amqtt's broker with the WebSocket handshake checked (see the module docstring)."""

    async def _create_server_instance(
        self,
        listener_name: str,
        listener_type: ListenerType,
        address: str | None,
        port: int,
        ssl_context: ssl.SSLContext | None,
    ) -> Any:
        # Overrides amqtt 0.12's (private) factory only for WebSocket listeners, adding the check.
        if listener_type != ListenerType.WS:
            return await super()._create_server_instance(
                listener_name, listener_type, address, port, ssl_context
            )
        return await websockets.serve(
            partial(self.ws_connected, listener_name=listener_name),
            address,
            port,
            ssl=ssl_context,
            subprotocols=[websockets.Subprotocol("mqtt")],
            process_request=_check_handshake,
            # No WebSocket pings: MQTT's own keepalive (PINGREQ, enforced by the broker) tells a
            # dead client. paho-mqtt answers a ping with an unmasked pong, which RFC 6455 makes the
            # server close the connection for, so with websockets' default (a ping every 20 s)
            # every paho WebSocket client was dropped every 20 s, and a clean session lost the
            # messages published while it reconnected.
            ping_interval=None,
        )


_AUTH_PLUGIN = f"{AcceptAnyClientPlugin.__module__}.{AcceptAnyClientPlugin.__qualname__}"
_TAP_PLUGIN = f"{MessageTapPlugin.__module__}.{MessageTapPlugin.__qualname__}"
_TOPIC_PLUGIN = f"{PolicyTopicPlugin.__module__}.{PolicyTopicPlugin.__qualname__}"


class MqttBroker:
    """amqtt on ``host`` with a TCP listener (``mqtt_port``) and a WebSocket one (``ws_port``).

    Port 0 picks a free port; the chosen ones are in :attr:`mqtt_port` / :attr:`ws_port` after
    :meth:`start`. Every client is let in: any client id, no credentials, no TLS. Persistent
    sessions (clean session off) keep their subscriptions and QoS 1 messages for an hour.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        mqtt_port: int = 0,
        ws_port: int = 0,
        on_message: MessageSink | None = None,
        *,
        start_timeout: float = 10.0,
        clock: Clock = time.time,
        access: IotAccess | None = None,
    ) -> None:
        self.host = host
        self._access = access
        self._policy_plugins: list[AcceptAnyClientPlugin | PolicyTopicPlugin] = []
        self._requested_ports = {"default": mqtt_port, "ws": ws_port}
        self._on_message = on_message
        self._start_timeout = start_timeout
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None
        self._ports: dict[str, int] = {}
        self._retained_lock = threading.Lock()
        # topic → (payload, when it was retained, ms)
        self._retained_stamps: dict[str, tuple[bytes, int]] = {}

    @property
    def access(self) -> IotAccess | None:
        """Who may connect and do what (None: every client may do anything)."""
        return self._access

    @access.setter
    def access(self, access: IotAccess | None) -> None:
        # Plain attribute writes: the plugins read it on the broker's loop, one reference at a time.
        self._access = access
        for plugin in self._policy_plugins:
            plugin.access = access

    # -------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the loop thread and the listeners; raise :class:`BrokerStartError` on failure."""
        if self._broker is not None:
            raise BrokerStartError("the broker is already running")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="iot-mqtt-broker", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        future = asyncio.run_coroutine_threadsafe(self._start_broker(), loop)
        try:
            self._broker = future.result(timeout=self._start_timeout)
        except TimeoutError as exc:
            future.cancel()
            self._stop_loop()
            raise BrokerStartError(f"the MQTT broker did not start within {self._start_timeout} s") from exc
        except Exception as exc:
            self._stop_loop()
            raise BrokerStartError(
                f"the MQTT broker could not listen on {self.host} (TCP port "
                f"{self._requested_ports['default']}, WebSocket port {self._requested_ports['ws']}): {exc}"
            ) from exc
        LOG.info("MQTT broker on %s: TCP %d, WebSocket %d", self.host, self.mqtt_port, self.ws_port)

    async def _start_broker(self) -> Broker:
        config = {
            "listeners": {
                "default": {"type": "tcp", "bind": f"{self.host}:{self._requested_ports['default']}"},
                "ws": {"type": "ws", "bind": f"{self.host}:{self._requested_ports['ws']}"},
            },
            # AWS IoT's default persistent-session expiry.
            "session_expiry_interval": PERSISTENT_SESSION_EXPIRY_S,
            # Only what local IoT needs: any client in, and the tap. amqtt's default $SYS and
            # packet-logging plugins are left out (noise, and $SYS topics do not exist on AWS).
            "plugins": {_AUTH_PLUGIN: {}, _TOPIC_PLUGIN: {}, _TAP_PLUGIN: {}},
        }
        broker = _LocalBroker(config)
        for plugin in broker.plugins_manager.plugins:
            if isinstance(plugin, MessageTapPlugin):
                plugin.attach(self._client_published, self._retained_changed)
            elif isinstance(plugin, AcceptAnyClientPlugin | PolicyTopicPlugin):
                self._policy_plugins.append(plugin)
                plugin.access = self.access
        try:
            await broker.start()
        except Exception:
            # A half-started broker may hold one of the two ports.
            for server in list(getattr(broker, "_servers", {}).values()):
                await server.close_instance()
            raise
        for name in ("default", "ws"):
            # amqtt does not report the ports it bound; port 0 needs the real ones.
            instance = broker._servers[name].instance
            self._ports[name] = int(instance.sockets[0].getsockname()[1])
        return broker

    def stop(self, timeout: float = 10.0) -> None:
        """Disconnect every client, close the listeners and stop the loop thread."""
        broker, loop = self._broker, self._loop
        self._broker = None
        if broker is not None and loop is not None:
            future = asyncio.run_coroutine_threadsafe(self._shutdown(broker, timeout), loop)
            try:
                future.result(timeout=timeout + 1.0)
            except Exception:
                LOG.warning("the MQTT broker did not shut down cleanly", exc_info=True)
        self._stop_loop(timeout)
        self._ports.clear()
        with self._retained_lock:
            self._retained_stamps.clear()

    @staticmethod
    async def _shutdown(broker: Broker, timeout: float) -> None:
        servers = dict(broker._servers)
        websocket_server = servers.get("ws")
        if websocket_server is not None:
            # A WebSocket client that no longer answers would hold the close handshake (and so the
            # shutdown) for websockets' default 10 s.
            for connection in websocket_server.instance.connections:
                connection.close_timeout = _WS_CLOSE_TIMEOUT
        try:
            await asyncio.wait_for(broker.shutdown(), timeout)
        finally:
            # Whatever happened above, release the listening ports.
            for server in servers.values():
                server.instance.close()

    def _stop_loop(self, timeout: float = 5.0) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return

        async def cancel_everything() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(cancel_everything(), loop).result(timeout)
        except Exception:
            LOG.debug("leftover broker tasks did not finish", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        if not loop.is_running():
            loop.close()

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._broker is not None

    @property
    def mqtt_port(self) -> int:
        """The TCP listener's port."""
        return self._port("default")

    @property
    def ws_port(self) -> int:
        """The WebSocket listener's port."""
        return self._port("ws")

    def _port(self, name: str) -> int:
        if name not in self._ports:
            raise RuntimeError("the MQTT broker is not running")
        return self._ports[name]

    # -------------------------------------------------------------------------------- messages

    def publish(
        self, topic: str, payload: bytes, qos: int = 0, retain: bool = False, client_id: str = ""
    ) -> IotMessage:
        """Publish from inside localcloud (the data plane, a Republish action): subscribers get it,
        and so does ``on_message``. Safe from any thread except the broker's own."""
        validate_topic(topic)
        broker, loop = self._broker, self._loop
        if broker is None or loop is None:
            raise RuntimeError("the MQTT broker is not running")
        message = IotMessage(
            topic=topic,
            payload=bytes(payload),
            timestamp_ms=int(self._clock() * 1000),
            qos=qos,
            retain=retain,
            client_id=client_id,
        )
        future = asyncio.run_coroutine_threadsafe(self._deliver(broker, message), loop)
        future.result(timeout=10.0)
        if self._on_message is not None:
            self._on_message(message)
        return message

    async def _deliver(self, broker: Broker, message: IotMessage) -> None:
        # QoS 0 forces QoS 0 on every subscriber; for QoS 1 amqtt delivers at each subscription's
        # QoS, which is min(1, granted) since AWS IoT (and so localcloud) grants at most QoS 1.
        force_qos = 0 if message.qos == 0 else None
        await broker.internal_message_broadcast(message.topic, message.payload, force_qos)
        if message.retain:
            # An empty retained payload clears the topic's retained message (MQTT-3.3.1-10).
            await broker.retain_message(None, message.topic, message.payload, message.qos)
            self._stamp_retained(message.topic, message.payload)

    def _client_published(self, client_id: str, application_message: Any) -> None:
        # Runs on the broker's loop: hand over and return.
        if self._on_message is None:
            return
        packet = getattr(application_message, "publish_packet", None)
        message = IotMessage(
            topic=str(application_message.topic),
            payload=bytes(application_message.data or b""),
            timestamp_ms=int(self._clock() * 1000),
            qos=int(application_message.qos or 0),
            retain=bool(packet is not None and packet.retain_flag),
            client_id=client_id or "",
        )
        try:
            self._on_message(message)
        except Exception:
            LOG.exception("the rules engine refused a message on %s", message.topic)

    def _retained_changed(self, retained_message: Any) -> None:
        self._stamp_retained(str(retained_message.topic), bytes(retained_message.data or b""))

    def _stamp_retained(self, topic: str, payload: bytes) -> None:
        # amqtt keeps retained messages without a time; remember when each payload was stored.
        with self._retained_lock:
            if not payload:
                self._retained_stamps.pop(topic, None)
            elif self._retained_stamps.get(topic, (b"", 0))[0] != payload:
                self._retained_stamps[topic] = (payload, int(self._clock() * 1000))

    def retained_messages(self) -> list[RetainedMessage]:
        """Every retained message, by topic."""
        broker, loop = self._broker, self._loop
        if broker is None or loop is None:
            return []

        async def snapshot() -> list[tuple[str, bytes, int]]:
            # Read on the broker's loop: amqtt's dict is only ever changed there.
            return [
                (t, bytes(m.data), int(m.qos or 0)) for t, m in broker.retained_messages.items() if m.data
            ]

        entries = asyncio.run_coroutine_threadsafe(snapshot(), loop).result(timeout=10.0)
        messages = []
        with self._retained_lock:
            for topic, payload, qos in sorted(entries):
                stamp = self._retained_stamps.get(topic)
                modified = stamp[1] if stamp and stamp[0] == payload else int(self._clock() * 1000)
                messages.append(RetainedMessage(topic, payload, qos, modified))
        return messages

    def retained(self, topic: str) -> RetainedMessage | None:
        """The retained message on ``topic``, if any."""
        return next((m for m in self.retained_messages() if m.topic == topic), None)
