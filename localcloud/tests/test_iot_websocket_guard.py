"""The broker's WebSocket listener refuses handshakes from foreign pages and rebound host names,
and still serves MQTT clients and pages served from this machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from localcloud.iot import LocalIot
from localcloud.iot.client import MqttClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

MQTT = Subprotocol("mqtt")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]
UNUSED_ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture
def iot() -> Iterator[LocalIot]:
    with LocalIot(endpoint_url=UNUSED_ENDPOINT) as local:
        yield local


def _handshake_status(iot: LocalIot, origin: str | None) -> int:
    try:
        with connect(
            iot.ws_url, origin=Origin(origin) if origin else None, subprotocols=[MQTT], open_timeout=10
        ):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def test_a_foreign_page_cannot_open_the_mqtt_websocket(iot: LocalIot) -> None:
    # Given a page on another site, When its script opens ws://127.0.0.1:PORT/mqtt, Then 403
    assert _handshake_status(iot, "https://attacker.example") == 403
    assert _handshake_status(iot, "null") == 403
    # A page served from this machine, and clients sending no Origin, connect
    assert _handshake_status(iot, "http://127.0.0.1:8123") == 101
    assert _handshake_status(iot, None) == 101


def test_a_rebound_host_name_is_refused(iot: LocalIot) -> None:
    with socket.create_connection(("127.0.0.1", iot.broker.ws_port), timeout=10) as sock:
        sock.sendall(
            b"GET /mqtt HTTP/1.1\r\nHost: attacker.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Protocol: mqtt\r\n\r\n"
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 403")


def test_mqtt_over_websocket_still_works(iot: LocalIot) -> None:
    client = MqttClient(iot.ws_url)
    client.connect()
    try:
        client.subscribe("guard/#", 1)
        iot.publish("guard/x", b"hello", qos=1)
        message = client.receive(timeout=10)
        assert message is not None and message.payload == b"hello"
    finally:
        client.close()
