"""The MQTT broker and the data-plane endpoint: boto3 iot-data → MQTT subscribers (TCP, WebSocket)."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from localcloud.iot import BrokerStartError, LocalIot
from localcloud.iot.client import MqttClient, MqttClientError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

# No rule in this module calls AWS; nothing listens here.
UNUSED_ENDPOINT = "http://127.0.0.1:9"


@pytest.fixture
def iot() -> Iterator[LocalIot]:
    with LocalIot(endpoint_url=UNUSED_ENDPOINT) as local:
        yield local


@pytest.fixture
def data(iot: LocalIot):
    return boto3.client(
        "iot-data",
        endpoint_url=iot.data_url,
        region_name="us-east-1",
        aws_access_key_id="fake",
        aws_secret_access_key="fake",
        config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def clients(iot: LocalIot) -> Iterator[list[MqttClient]]:
    """MQTT clients a test opens; all disconnected afterwards."""
    opened: list[MqttClient] = []
    yield opened
    for client in opened:
        client.close()


def connect(clients: list[MqttClient], url: str, client_id: str | None = None) -> MqttClient:
    client = MqttClient(url, client_id).connect()
    clients.append(client)
    return client


def assert_nothing_more(client: MqttClient, wait: float = 0.3) -> None:
    with pytest.raises(MqttClientError):
        extra = client.receive(wait)
        print("unexpected", extra)


def test_urls_name_the_listeners(iot):
    assert iot.mqtt_url == f"mqtt://127.0.0.1:{iot.broker.mqtt_port}"
    assert iot.ws_url == f"ws://127.0.0.1:{iot.broker.ws_port}/mqtt"
    assert iot.data_url == f"http://127.0.0.1:{iot.data_plane.port}"
    assert len({iot.broker.mqtt_port, iot.broker.ws_port, iot.data_plane.port}) == 3


def test_iot_data_publish_reaches_websocket_and_tcp_subscribers(iot, data, clients):
    # Given a browser-like subscriber over WebSocket and a device-like one over TCP
    browser = connect(clients, iot.ws_url)
    device = connect(clients, iot.mqtt_url)
    assert browser.subscribe("races/r-1/standings", qos=1) == 1
    assert device.subscribe("races/r-1/standings", qos=1) == 1

    # When a backend publishes through the data plane, as boto3 does against AWS
    body = json.dumps({"leader": "bike-7"}).encode()
    response = data.publish(topic="races/r-1/standings", qos=1, payload=body)

    # Then AWS's answer comes back and both subscribers get the message once, at QoS 1
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    for client in (browser, device):
        received = client.receive()
        assert (received.topic, received.payload, received.qos) == ("races/r-1/standings", body, 1)
        assert_nothing_more(client, 0.1)


def test_wildcard_subscriptions(iot, data, clients):
    single = connect(clients, iot.ws_url)
    single.subscribe("races/+/positions")
    multi = connect(clients, iot.mqtt_url)
    multi.subscribe("races/#")

    for topic in ("races/r-1/positions", "races/r-1/laps", "races/r-2/positions", "other/r-1/positions"):
        data.publish(topic=topic, qos=0, payload=topic.encode())

    assert [m.topic for m in single.receive_many(2)] == ["races/r-1/positions", "races/r-2/positions"]
    assert [m.topic for m in multi.receive_many(3)] == [
        "races/r-1/positions",
        "races/r-1/laps",
        "races/r-2/positions",
    ]
    assert_nothing_more(single)
    assert_nothing_more(multi, 0.05)


def test_the_client_environment_routes_boto3_iot_data_to_the_data_plane(iot, clients, monkeypatch):
    # Given the variables a function worker would get, next to the general endpoint override
    monkeypatch.setenv("AWS_ENDPOINT_URL", UNUSED_ENDPOINT)
    for name, value in iot.client_environment().items():
        monkeypatch.setenv(name, value)
    subscriber = connect(clients, iot.ws_url)
    subscriber.subscribe("from/handler")

    # When code publishes with a plain iot-data client (no endpoint_url)
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1")
    session.client("iot-data").publish(topic="from/handler", payload=b"hi")

    # Then the message reaches local IoT
    assert subscriber.receive().payload == b"hi"


def test_topics_are_url_decoded(iot, data, clients):
    subscriber = connect(clients, iot.mqtt_url)
    subscriber.subscribe("#")
    data.publish(topic="with space/ü/100%/a&b?=c", payload=b"x")
    assert subscriber.receive().topic == "with space/ü/100%/a&b?=c"


def test_qos_is_the_lower_of_publish_and_subscription(iot, data, clients):
    at_one = connect(clients, iot.mqtt_url)
    at_one.subscribe("q", qos=1)
    at_zero = connect(clients, iot.ws_url)
    at_zero.subscribe("q", qos=0)

    data.publish(topic="q", qos=0, payload=b"zero")
    data.publish(topic="q", qos=1, payload=b"one")

    assert [(m.payload, m.qos) for m in at_one.receive_many(2)] == [(b"zero", 0), (b"one", 1)]
    assert [(m.payload, m.qos) for m in at_zero.receive_many(2)] == [(b"zero", 0), (b"one", 0)]


def test_mqtt_clients_talk_to_each_other_across_transports(iot, clients):
    browser = connect(clients, iot.ws_url)
    browser.subscribe("chat/#", qos=1)
    device = connect(clients, iot.mqtt_url, client_id="bike-7")

    device.publish("chat/bike-7", b"hello", qos=1)

    received = browser.receive()
    assert (received.topic, received.payload) == ("chat/bike-7", b"hello")


def test_persistent_sessions_keep_qos1_messages_while_offline(iot, data):
    # Given a device with a persistent session and a QoS 1 subscription, then offline
    with MqttClient(iot.mqtt_url, "bike-persistent", clean_session=False) as device:
        device.subscribe("commands/bike-persistent", qos=1)

    # When commands are published while it is away
    data.publish(topic="commands/bike-persistent", qos=1, payload=b"stop")

    # Then it gets them when it comes back with the same client id
    with MqttClient(iot.mqtt_url, "bike-persistent", clean_session=False) as device:
        assert device.receive().payload == b"stop"


def test_in_process_publish_takes_the_data_plane_path(iot, clients):
    subscriber = connect(clients, iot.ws_url)
    subscriber.subscribe("local/+")
    message = iot.publish("local/x", b"payload", qos=1)
    assert message.client_id == ""
    assert subscriber.receive().payload == b"payload"


def test_retained_messages_through_the_data_plane(iot, data, clients):
    # Given a retained message published over HTTP
    data.publish(topic="config/race", qos=1, retain=True, payload=b'{"laps":3}')

    # Then GetRetainedMessage and ListRetainedMessages report it
    retained = data.get_retained_message(topic="config/race")
    assert (retained["topic"], retained["payload"], retained["qos"]) == ("config/race", b'{"laps":3}', 1)
    assert abs(retained["lastModifiedTime"] - time.time() * 1000) < 60_000
    listed = data.list_retained_messages()["retainedTopics"]
    assert [(t["topic"], t["payloadSize"]) for t in listed] == [("config/race", 10)]

    # And a later subscriber receives it with the retain flag
    late = connect(clients, iot.ws_url)
    late.subscribe("config/#")
    received = late.receive()
    assert (received.payload, received.retain) == (b'{"laps":3}', True)

    # And an empty retained payload clears it
    data.publish(topic="config/race", retain=True, payload=b"")
    with pytest.raises(ClientError) as error:
        data.get_retained_message(topic="config/race")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert data.list_retained_messages()["retainedTopics"] == []


def test_retained_message_from_an_mqtt_client_is_listed(iot, data, clients):
    device = connect(clients, iot.mqtt_url)
    device.publish("status/bike-7", b"online", qos=1, retain=True)
    deadline = time.monotonic() + 5
    while True:
        try:
            assert data.get_retained_message(topic="status/bike-7")["payload"] == b"online"
            break
        except ClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_invalid_publishes_are_answered_like_aws(iot, data):
    with pytest.raises(ClientError) as wildcard:
        data.publish(topic="races/+/positions", payload=b"x")
    assert wildcard.value.response["Error"]["Code"] == "InvalidRequestException"

    with pytest.raises(ClientError) as too_large:
        data.publish(topic="big", payload=b"x" * (128 * 1024 + 1))
    assert too_large.value.response["Error"]["Code"] == "RequestEntityTooLargeException"

    request = urllib.request.Request(f"{iot.data_url}/topics/a?qos=2", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as qos2:
        urllib.request.urlopen(request, timeout=5)
    assert qos2.value.code == 400
    assert qos2.value.headers["x-amzn-ErrorType"] == "InvalidRequestException"


def test_a_taken_port_fails_start_quickly_and_clearly():
    # Given a port something else listens on
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        started = time.monotonic()
        # Then starting on it fails with the port in the message, without hanging
        with pytest.raises(BrokerStartError, match=str(taken)):
            LocalIot(endpoint_url=UNUSED_ENDPOINT, mqtt_port=taken).start()
        with pytest.raises(BrokerStartError, match=str(taken)):
            LocalIot(endpoint_url=UNUSED_ENDPOINT, ws_port=taken).start()
        with pytest.raises(BrokerStartError, match="data plane"):
            LocalIot(endpoint_url=UNUSED_ENDPOINT, data_port=taken).start()
        assert time.monotonic() - started < 5


def test_stop_releases_the_ports_for_a_restart():
    first = LocalIot(endpoint_url=UNUSED_ENDPOINT)
    first.start()
    ports = (first.broker.mqtt_port, first.broker.ws_port, first.data_plane.port)
    client = MqttClient(first.ws_url).connect()
    first.stop()
    client.close()

    second = LocalIot(endpoint_url=UNUSED_ENDPOINT, mqtt_port=ports[0], ws_port=ports[1], data_port=ports[2])
    second.start()
    try:
        with MqttClient(second.mqtt_url) as again:
            assert again.subscribe("x") == 0
    finally:
        second.stop()


@pytest.mark.timeout(90)
def test_a_websocket_subscriber_stays_connected_past_the_websocket_ping_period(iot, clients):
    # Given a paho WebSocket subscriber (paho answers WebSocket pings with unmasked frames, which
    # a server must close the connection for; websockets pings every 20 s by default)
    subscriber = connect(clients, iot.ws_url)
    subscriber.subscribe("standings/#", qos=1)
    # When a message is published every second for longer than that period
    sent = [f"update {n}".encode() for n in range(25)]
    for payload in sent:
        iot.publish("standings/race-1", payload, qos=1)
        time.sleep(1.0)
    # Then the subscriber got every one of them: it was never dropped and reconnected meanwhile
    received = [m.payload for m in subscriber.receive_many(len(sent), timeout=30)]
    assert received == sent
