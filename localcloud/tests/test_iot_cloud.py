"""A topic rule from a deployed template, through the real LocalCloud."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import boto3
import pytest
from localcloud.iot import HANDLED_BY, LocalIot
from localcloud.iot.client import MqttClient

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "iot_basic" / "template.yaml"


def stream_records(cloud: LocalCloud, stream: str, expected: int) -> list[tuple[str, bytes]]:
    kinesis = cloud.client("kinesis")
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")[
        "ShardIterator"
    ]
    records: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 10
    while len(records) < expected and time.monotonic() < deadline:
        page = kinesis.get_records(ShardIterator=iterator)
        records += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
        iterator = page["NextShardIterator"]
        time.sleep(0.02)
    return records


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_a_deployed_topic_rule_feeds_the_deployed_stream():
    with LocalCloud() as cloud:
        # Given the template deployed: the stream and queue by moto, the rules stripped and reported
        result = cloud.deploy(TEMPLATE, "iotstack")
        rule_types = {s.logical_id: s.resource_type for s in result.skipped}
        assert rule_types == dict.fromkeys(
            ("PositionsRule", "PausedRule", "AlertsRule"), "AWS::IoT::TopicRule"
        )

        with LocalIot(endpoint_url=cloud.endpoint_url, region=cloud.region) as iot:
            # When local IoT loads the stack's rules
            infos = {info.name: info for info in iot.register(result)}

            # Then the rule's Ref (a stand-in id) is its name, references are resolved, RuleDisabled kept
            rule_name = result.outputs["RuleName"]
            stream = result.outputs["StreamName"]
            assert set(infos) == {rule_name, "paused_positions", "alerts_to_lambda"}
            assert infos[rule_name].actions == (f"KinesisAction({stream})",)
            assert infos[rule_name].error_action == f"SqsAction({result.outputs['ErrorQueueUrl']})"
            assert infos["paused_positions"].disabled
            assert all(s.handled_by == HANDLED_BY for s in result.skipped)

            # And a device publishing over MQTT and a backend publishing through boto3 iot-data
            # both land in the stream, keyed by raceId
            with MqttClient(iot.mqtt_url, "bike-1") as device:
                device.publish("races/r-1/positions", b'{"raceId": "r-1", "km": 1.5}', qos=1)
            data = boto3.client(
                "iot-data",
                endpoint_url=iot.data_url,
                region_name=cloud.region,
                aws_access_key_id="fake",
                aws_secret_access_key="fake",
            )
            data.publish(topic="races/r-2/positions", qos=1, payload=b'{"raceId": "r-2", "km": 3}')
            # A message without a raceId cannot be keyed: it goes to the error queue
            data.publish(topic="races/r-3/positions", qos=0, payload=b'{"km": 4}')

            records = stream_records(cloud, stream, 2)
            assert records == [
                ("r-1", b'{"raceId": "r-1", "km": 1.5}'),
                ("r-2", b'{"raceId": "r-2", "km": 3}'),
            ]
            assert iot.wait_idle()
            sqs = cloud.client("sqs")
            answer = sqs.receive_message(QueueUrl=result.outputs["ErrorQueueUrl"], WaitTimeSeconds=1)
            (error,) = [json.loads(m["Body"]) for m in answer["Messages"]]
            assert error["ruleName"] == rule_name
            assert base64.b64decode(error["base64OriginalPayload"]) == b'{"km": 4}'
            stats = iot.stats()
            assert (stats[rule_name].actions_succeeded, stats[rule_name].error_actions_succeeded) == (2, 1)
            assert stats["paused_positions"].received == 0

            # And a Lambda action invokes the deployed function (through the Lambda API, as an
            # asynchronous invocation) with the SELECT output
            data.publish(topic="alerts/bike-7", payload=b'{"level": 3, "extra": "x"}')
            data.publish(topic="alerts/bike-8", payload=b'{"level": 1}')
            assert iot.wait_idle()
            assert cloud.wait_for_mappings(timeout=20)
            function = result.outputs["AlertsFunctionName"]
            alerts = [line for line in cloud.runtime.log(function).lines() if "ALERT" in line]
            assert alerts == ['ALERT {"level": 3, "rider": "bike-7"}']
