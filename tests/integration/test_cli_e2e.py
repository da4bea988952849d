"""The main job, end to end: `alleycat up` as a process, a race through `alleycat race`, standings
over MQTT-over-WebSocket, final standings from the API against an oracle, devices publishing over
MQTT through the IoT topic rule, and a clean SIGTERM shutdown.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulator import all_race_messages, plan_races
from tests.support.oracle import expected_standings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ALLEYCAT = [sys.executable, "-m", "alleycat"]


class Subscriber:
    """An MQTT-over-WebSocket client recording every message on a topic filter."""

    def __init__(self, ws_url: str, topic_filter: str) -> None:
        host_port = ws_url.removeprefix("ws://").split("/", 1)[0]
        host, port = host_port.split(":")
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        ready = threading.Event()
        identity = f"e2e-{os.getpid()}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{identity}-{time.time_ns()}",
            transport="websockets",
        )
        self.client.ws_set_options(path="/mqtt")
        # The local broker applies the stack's viewer policy to a viewer identity.
        self.client.username_pw_set(f"cognito:{identity}")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda c, u, m, r, p: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert ready.wait(10), "no MQTT subscription"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, orjson.loads(message.payload)))

    def on(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for t, body in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


def _group_alive(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if line.split()[1] == str(pgid)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    home = tmp_path_factory.mktemp("alleycat-home")
    log = (home / "up.log").open("w")
    process = subprocess.Popen(
        [*ALLEYCAT, "up", "--home", str(home), "--no-state"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: we can check nothing outlives it
    )
    info_path = home / "local.json"
    deadline = time.monotonic() + 90
    while not info_path.exists():
        assert process.poll() is None, (home / "up.log").read_text()
        assert time.monotonic() < deadline, "alleycat up did not write local.json in time"
        time.sleep(0.2)
    info = json.loads(info_path.read_text())
    yield {"info": info, "home": home, "process": process, "info_path": info_path}
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def test_local_json_follows_the_contract(stack: dict[str, Any]) -> None:
    info = stack["info"]
    for key in ("endpoint_url", "region", "api_url", "mqtt_url", "dashboard_url", "viewer_url"):
        assert info[key], key
    viewer_config = _get(info["viewer_url"] + "config.json")
    assert (viewer_config["apiUrl"], viewer_config["mqttUrl"]) == (info["api_url"], info["mqtt_url"])
    assert info["mqtt_url"].startswith("ws://127.0.0.1:") and info["mqtt_url"].endswith("/mqtt")
    outputs = info["stacks"]["alleycat"]["outputs"]
    for key in ("StreamName", "TableName", "ApiUrl", "DeadLetterQueueUrl", "IotTopicPrefix"):
        assert outputs[key], key
    assert outputs["ApiUrl"] == info["api_url"]
    with urllib.request.urlopen(info["dashboard_url"].rstrip("/") + "/status", timeout=10) as page:
        assert b"Event source mappings" in page.read()


def test_race_through_the_cli_matches_the_oracle(stack: dict[str, Any]) -> None:
    info = stack["info"]
    watcher = Subscriber(info["mqtt_url"], "alleycat/races/+/standings")
    try:
        race = subprocess.run(
            [
                *ALLEYCAT,
                "race",
                "--racers",
                "100",
                "--duration",
                "20",
                "--speed",
                "2",
                "--seed",
                "7",
                "--local-config",
                str(stack["info_path"]),
                "--json-summary",
                "--final-timeout",
                "60",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert race.returncode == 0, race.stdout + race.stderr
        assert f"live leaderboard: {info['viewer_url']}" in race.stdout, "the page's URL, first"
        summary = json.loads(race.stdout.strip().splitlines()[-1])
        (race_id,) = summary["raceIds"]
        assert summary["sent"] == 2000 and summary["failed"] == 0

        # (a) standings arrived over MQTT-over-WebSocket, the last one final
        updates = watcher.on(f"alleycat/races/{race_id}/standings")
        assert updates, "no standings over MQTT"
        assert max(updates, key=lambda u: u["version"])["status"] == "final"
    finally:
        watcher.close()

    # (b) the API's final standings equal the oracle computed from the same seed's messages
    spec = plan_races([1], 100, duration=20, seed=7, race_id_base=race_id)[0]
    oracle = expected_standings(all_race_messages(spec))[race_id]
    body = _get(f"{info['api_url']}/races/{race_id}/leaderboard?limit=1000")
    assert body["status"] == "final"
    got = [
        {"rank": s["rank"], "racerId": s["racerId"], "totalOutput": s["totalOutput"]}
        for s in body["standings"]
    ]
    assert got == oracle


def test_devices_publishing_over_mqtt_reach_the_standings(stack: dict[str, Any]) -> None:
    info = stack["info"]
    host, port = info["mqtt_url"].removeprefix("ws://").split("/", 1)[0].split(":")
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bike-7", transport="websockets")
    device.ws_set_options(path="/mqtt")
    device.username_pw_set("device")  # devices may publish to the ingest topic only
    device.connect(host, int(port))
    device.loop_start()
    race_id = 9_100_000_000 + int(time.time()) % 1_000_000
    messages = [
        {
            "event": "final" if second == 3 else "update",
            "deviceTimestamp": int(time.time() * 1000),
            "second": second,
            "raceId": race_id,
            "name": f"Device {racer}",
            "racerId": racer,
            "classId": 9,
            "cadence": 60 + racer,
            "resistance": 50,
        }
        for second in (1, 2, 3)
        for racer in (1, 2)
    ]
    try:
        for message in messages:
            device.publish("alleycat/ingest", orjson.dumps(message), qos=1).wait_for_publish(5)
    finally:
        device.disconnect()
        device.loop_stop()
    oracle = expected_standings(messages)[race_id]
    deadline = time.monotonic() + 60
    while True:
        try:
            body = _get(f"{info['api_url']}/races/{race_id}/leaderboard")
            if body["status"] == "final":
                break
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        assert time.monotonic() < deadline, "device messages never reached the standings"
        time.sleep(0.5)
    assert [
        {"rank": s["rank"], "racerId": s["racerId"], "totalOutput": s["totalOutput"]}
        for s in body["standings"]
    ] == oracle


def test_the_local_broker_refuses_clients_without_an_identity(stack: dict[str, Any]) -> None:
    # `alleycat up` applies the stack's IoT policies (no --iot-open): an anonymous client is refused.
    host, port = stack["info"]["mqtt_url"].removeprefix("ws://").split("/", 1)[0].split(":")
    answered = threading.Event()
    codes: list[Any] = []

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        codes.append(reason)
        answered.set()

    anonymous = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="anyone", transport="websockets")
    anonymous.ws_set_options(path="/mqtt")
    anonymous.on_connect = on_connect
    anonymous.connect(host, int(port))
    anonymous.loop_start()
    try:
        assert answered.wait(10), "no CONNACK"
        assert codes[0].is_failure
    finally:
        anonymous.loop_stop()
        anonymous.disconnect()


def test_sigterm_stops_everything(stack: dict[str, Any]) -> None:
    process: subprocess.Popen[bytes] = stack["process"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_alive(process.pid) == [], "processes outlived alleycat up"
    assert not stack["info_path"].exists()
