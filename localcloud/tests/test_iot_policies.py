"""The local broker applies a deployed stack's IoT policies to real MQTT clients: viewers (Cognito
guests) watch scores and publish nothing, devices publish only to the rules' ingest topic, clients
with no identity are refused, and an open broker lets everyone in as before."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud.iot import LocalIot
from localcloud.iot.client import MqttClient, MqttClientError

from localcloud import LocalCloud

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

TEMPLATE = Path(__file__).parent / "templates" / "iot_policies" / "template.yaml"
IDENTITY = "us-east-1:11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[LocalCloud, LocalIot, object]]:
    with LocalCloud(api_gateway=False) as cloud:
        result = cloud.deploy(TEMPLATE, "policies")
        with LocalIot(endpoint_url=cloud.endpoint_url, region=cloud.region) as iot:
            iot.register(result)
            yield cloud, iot, result


@pytest.fixture
def closed(stack: tuple[LocalCloud, LocalIot, object]) -> LocalIot:
    _, iot, result = stack
    iot.apply_policies(result)  # type: ignore[arg-type]
    return iot


def viewer(iot: LocalIot, identity: str = IDENTITY, suffix: str = "tab1") -> MqttClient:
    return MqttClient(iot.ws_url, f"{identity}-{suffix}", username=f"cognito:{identity}")


def test_a_client_with_no_identity_is_refused(closed: LocalIot) -> None:
    with pytest.raises(MqttClientError, match="refused"):
        MqttClient(closed.mqtt_url).connect()


def test_a_viewer_watches_scores_and_cannot_publish_them(closed: LocalIot) -> None:
    with viewer(closed) as watcher:
        assert watcher.subscribe("demo/scores/+", 1) == 1
        # Subscribing elsewhere is refused (SUBACK 0x80), as AWS IoT does.
        assert watcher.subscribe("demo/ingest", 1) == 0x80
        closed.publish("demo/scores/1", b"real", qos=1)
        received = watcher.receive(timeout=10)
        assert received is not None and received.payload == b"real"
        # When the viewer publishes fake scores, Then nobody receives them
        with viewer(closed, suffix="tab2") as other:
            other.subscribe("demo/scores/+", 1)
            watcher.publish("demo/scores/1", b"fake", qos=1)
            closed.publish("demo/scores/1", b"real again", qos=1)
            got = other.receive(timeout=10)
            assert got is not None and got.payload == b"real again"


def test_a_viewer_cannot_take_another_identitys_client_id(closed: LocalIot) -> None:
    intruder = MqttClient(closed.ws_url, f"{IDENTITY}-tab1", username="cognito:us-east-1:someone-else")
    with pytest.raises(MqttClientError, match="refused"):
        intruder.connect()


def test_a_device_publishes_to_the_ingest_topic_only(closed: LocalIot) -> None:
    with viewer(closed) as watcher, MqttClient(closed.mqtt_url, username="device") as device:
        watcher.subscribe("demo/scores/+", 1)
        before = closed.stats()
        device.publish("demo/ingest", b'{"reading": 1}', qos=1)
        device.publish("demo/scores/1", b"forged", qos=1)
        rule = next(iter(closed.stats()))
        # The broker acknowledges a publish before its rules run: wait for the ingest rule to see it.
        deadline = time.monotonic() + 10
        while closed.stats()[rule].received < before[rule].received + 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        closed.wait_idle()
        assert closed.stats()[rule].received == before[rule].received + 1
        closed.publish("demo/scores/1", b"real", qos=1)
        got = watcher.receive(timeout=10)
        assert got is not None and got.payload == b"real"
        # A device subscribes to nothing.
        assert device.subscribe("demo/scores/+", 1) == 0x80


def test_an_open_broker_lets_everyone_in(stack: tuple[LocalCloud, LocalIot, object]) -> None:
    _, iot, result = stack
    iot.apply_policies(result, open=True)  # type: ignore[arg-type]
    try:
        with MqttClient(iot.mqtt_url) as anyone:
            assert anyone.subscribe("demo/#", 1) == 1
            anyone.publish("demo/scores/1", b"anything", qos=1)
    finally:
        iot.apply_policies(result)  # type: ignore[arg-type]
