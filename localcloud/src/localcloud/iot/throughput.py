"""Measure how many messages per second go through a topic rule into Kinesis.

``python -m localcloud.iot.throughput [--messages 2000]``: a moto server, local IoT, one stream and
one ``SELECT * ... → Kinesis`` rule keyed by ``${raceId}``; messages are published over MQTT (one
TCP client, QoS 1, and QoS 0) and through the data plane (boto3 ``iot-data``), and the clock stops
when the last record is in the stream.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable

import boto3
from moto.server import ThreadedMotoServer

from localcloud.aws import make_client
from localcloud.iot.client import MqttClient
from localcloud.iot.local import LocalIot


def _run(iot: LocalIot, rule: str, count: int, publish: Callable[[int], object]) -> float:
    before = iot.stats()[rule].actions_succeeded
    started = time.perf_counter()
    for index in range(count):
        publish(index)
    deadline = time.monotonic() + 300
    while iot.stats()[rule].actions_succeeded < before + count:
        if time.monotonic() > deadline:
            raise TimeoutError("the rule did not finish in time")
        time.sleep(0.001)
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    """Print messages per second through one Kinesis rule, for each way of publishing."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        make_client("kinesis", endpoint).create_stream(StreamName="throughput", ShardCount=4)
        with LocalIot(endpoint_url=endpoint) as iot:
            iot.add_rule(
                "throughput",
                {
                    "Sql": "SELECT * FROM 'races/+/positions'",
                    "Actions": [{"Kinesis": {"StreamName": "throughput", "PartitionKey": "${raceId}"}}],
                },
            )

            def payload(index: int) -> bytes:
                return json.dumps(
                    {"raceId": f"race-{index % 8}", "riderId": index, "km": index / 10}
                ).encode()

            data = boto3.client(
                "iot-data",
                endpoint_url=iot.data_url,
                region_name="us-east-1",
                aws_access_key_id="fake",
                aws_secret_access_key="fake",
            )
            count = args.messages
            with MqttClient(iot.mqtt_url, "throughput-device") as device:
                results = {
                    "MQTT QoS 1 (waits for each PUBACK)": _run(
                        iot,
                        "throughput",
                        count,
                        lambda i: device.publish("races/r/positions", payload(i), qos=1),
                    ),
                    "MQTT QoS 0": _run(
                        iot,
                        "throughput",
                        count,
                        lambda i: device.publish("races/r/positions", payload(i), qos=0),
                    ),
                }
            results["iot-data Publish (boto3, one thread)"] = _run(
                iot,
                "throughput",
                count,
                lambda i: data.publish(topic="races/r/positions", payload=payload(i)),
            )
            results["LocalIot.publish (in-process)"] = _run(
                iot, "throughput", count, lambda i: iot.publish("races/r/positions", payload(i))
            )
            for label, rate in results.items():
                print(f"{label:40s} {rate:8.0f} messages/s into Kinesis")
            print(iot.stats()["throughput"])
    finally:
        server.stop()


if __name__ == "__main__":
    main()
