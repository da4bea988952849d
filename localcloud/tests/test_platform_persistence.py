"""State survives a restart: Kinesis records, DynamoDB items, SQS messages, deployed stacks."""

from __future__ import annotations

import json
import pickle
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from localcloud.persistence import MANIFEST_FILE, STATE_FILE, STATE_FORMAT, StateStore, state_fingerprint

from localcloud import IncompatibleStateError, LocalCloud

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


def _saved_state(state_dir: Path) -> None:
    with LocalCloud(state_dir=state_dir, metrics=False) as cloud:
        cloud.client("sqs").create_queue(QueueName="kept")


class _Tripwire:
    """Unpickling this writes a file: proof that a refused state was never unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.write_text, (self.marker, "unpickled"))


def test_the_state_folder_records_what_wrote_it(tmp_path):
    _saved_state(tmp_path)

    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())

    assert manifest == state_fingerprint()
    assert manifest["format"] == STATE_FORMAT
    assert manifest["moto"] == version("moto")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"moto": "4.0.0"}, "moto 4.0.0"),
        ({"format": STATE_FORMAT + 1}, f"state format {STATE_FORMAT + 1}"),
        ({"python": "3.99"}, "Python 3.99"),
    ],
)
def test_state_from_another_version_is_refused_unread(tmp_path, change, expected):
    # Given a saved state whose manifest names another moto, format or Python, and a pickle that
    # would leave a mark if it were ever unpickled
    store = StateStore(tmp_path)
    marker = tmp_path / "tripwire"
    (tmp_path / STATE_FILE).write_bytes(pickle.dumps(_Tripwire(marker)))
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**state_fingerprint(), **change}))

    # When it is restored, it is refused with both versions named and a way out
    with pytest.raises(IncompatibleStateError) as refused:
        store.load()

    message = str(refused.value)
    assert expected in message and f"moto {version('moto')}" in message
    assert "--no-state" in message and str(tmp_path) in message
    assert not marker.exists()


def test_state_saved_before_manifests_existed_is_refused_unread(tmp_path):
    marker = tmp_path / "tripwire"
    (tmp_path / STATE_FILE).write_bytes(pickle.dumps(_Tripwire(marker)))

    with pytest.raises(IncompatibleStateError, match="older localcloud"):
        StateStore(tmp_path).load()
    assert not marker.exists()


def test_a_damaged_state_file_is_refused_with_a_message_not_a_crash(tmp_path):
    _saved_state(tmp_path)
    saved = tmp_path / STATE_FILE
    saved.write_bytes(saved.read_bytes()[: len(saved.read_bytes()) // 2])

    with pytest.raises(IncompatibleStateError, match="cannot be read"):
        StateStore(tmp_path).load()


def test_localcloud_up_refuses_incompatible_state_with_its_message(tmp_path):
    # Given a state folder written by another moto
    _saved_state(tmp_path / "state")
    manifest = tmp_path / "state" / MANIFEST_FILE
    manifest.write_text(json.dumps({**state_fingerprint(), "moto": "4.0.0"}))

    # When `localcloud up` starts on it
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "localcloud",
            "up",
            str(TEMPLATE),
            "--state-dir",
            str(tmp_path / "state"),
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    # Then it exits with a usage error and says why, without a traceback
    assert done.returncode == 2, done.stdout + done.stderr
    output = " ".join((done.stdout + done.stderr).split())
    assert "cannot restore the saved state" in output and "moto 4.0.0" in output
    assert "Traceback" not in done.stderr
