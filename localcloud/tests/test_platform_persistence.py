"""State survives a restart: Kinesis records, DynamoDB items, SQS messages, deployed stacks."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "platform_basic" / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_data_and_stacks_survive_a_restart(tmp_path):
    state_dir = tmp_path / "state"

    # Given data written into a LocalCloud with a state folder, which is then stopped
    with LocalCloud(state_dir=state_dir) as first:
        deployed = first.deploy(TEMPLATE, "keep")
        kinesis = first.client("kinesis")
        kinesis.create_stream(StreamName="laps", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="laps")
        for n in range(3):
            kinesis.put_record(StreamName="laps", Data=f"lap-{n}".encode(), PartitionKey="5400802")
        first.client("dynamodb").put_item(
            TableName=deployed.outputs["TableName"], Item={"pk": {"S": "racer-101"}}
        )
        first.client("sqs").send_message(QueueUrl=deployed.outputs["QueueUrl"], MessageBody="finish line")
    assert (state_dir / "moto-state.pickle").exists()

    # When a new LocalCloud starts on the same folder
    with LocalCloud(state_dir=state_dir) as second:
        # Then the records, items and messages are all there
        assert second.restored
        kinesis = second.client("kinesis")
        shard_id = kinesis.list_shards(StreamName="laps")["Shards"][0]["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName="laps", ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        assert [r["Data"] for r in records] == [b"lap-0", b"lap-1", b"lap-2"]
        item = second.client("dynamodb").get_item(
            TableName=deployed.outputs["TableName"], Key={"pk": {"S": "racer-101"}}
        )
        assert item["Item"]["pk"]["S"] == "racer-101"
        messages = second.client("sqs").receive_message(
            QueueUrl=deployed.outputs["QueueUrl"], WaitTimeSeconds=1
        )
        assert [m["Body"] for m in messages["Messages"]] == ["finish line"]
        # And the function runs from its folder before any redeploy
        assert second.invoke(deployed.outputs["FunctionName"], {"n": 1}).payload["event"] == {"n": 1}
        # And a redeploy updates the same stack in place
        again = second.deploy(TEMPLATE, "keep")
        assert again.updated and again.stack_id == deployed.stack_id
        assert again.outputs == deployed.outputs


def test_without_a_state_folder_nothing_is_kept(tmp_path):
    with LocalCloud() as first:
        first.client("sqs").create_queue(QueueName="ephemeral")

    with LocalCloud() as second:
        assert not second.restored
        assert "QueueUrls" not in second.client("sqs").list_queues()


def test_only_one_localcloud_runs_per_process():
    with LocalCloud(), pytest.raises(RuntimeError, match="another LocalCloud"):
        LocalCloud().start()


def test_a_failed_start_cleans_up_and_leaves_the_state_alone(tmp_path):
    # Given a state folder with saved state, and its port taken by someone else
    state_dir = tmp_path / "state"
    with LocalCloud(state_dir=state_dir) as first:
        first.client("sqs").create_queue(QueueName="kept")
    saved = (state_dir / "moto-state.pickle").read_bytes()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken_port = blocker.getsockname()[1]

        # When a LocalCloud fails to start on that port
        with pytest.raises(OSError):
            LocalCloud(state_dir=state_dir, port=taken_port).start()

    # Then the saved state is untouched and the next LocalCloud starts normally
    assert (state_dir / "moto-state.pickle").read_bytes() == saved
    with LocalCloud(state_dir=state_dir) as again:
        assert again.client("sqs").get_queue_url(QueueName="kept")["QueueUrl"]


def test_state_with_private_keys_survives_a_restart(tmp_path):
    # moto holds real key objects (SNS signing, KMS keys, IoT certificates); they must not break saving.
    with LocalCloud(state_dir=tmp_path) as cloud:
        key_id = cloud.client("kms").create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"][
            "KeyId"
        ]
        signature = cloud.client("kms").sign(
            KeyId=key_id, Message=b"race", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
        )["Signature"]
    with LocalCloud(state_dir=tmp_path) as cloud:
        verified = cloud.client("kms").verify(
            KeyId=key_id, Message=b"race", Signature=signature, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
        )
        assert verified["SignatureValid"]
