"""The cursor key rotates on localcloud exactly as on AWS: Secrets Manager's RotateSecret runs the
stack's rotation function (four steps), the API reads the key at run time with powertools'
parameters utility, a cursor survives one rotation and is refused with a 400 after two."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from alleycat.stack import LocalStack
from leaderboard.adapters.dynamodb import DynamoRaceStore
from tests.unit.test_api_support import message, write_messages

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RACE = 770_001


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    local = LocalStack(home=tmp_path_factory.mktemp("rotation"), persist=False)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _eventually(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not hold in time")
        time.sleep(0.5)


def test_a_cursor_survives_one_rotation_and_not_two(stack: LocalStack) -> None:
    outputs = stack.stacks["alleycat"].outputs
    cloud = stack.cloud
    assert cloud is not None
    write_messages(
        DynamoRaceStore(cloud.client("dynamodb"), outputs["TableName"]),
        [message(RACE, racer, 1, cadence=40 + racer) for racer in range(6)],
    )
    lambdas = cloud.client("lambda")
    api_function = next(
        f["FunctionName"] for f in lambdas.list_functions()["Functions"] if "ApiFunction" in f["FunctionName"]
    )
    config = lambdas.get_function_configuration(FunctionName=api_function)
    variables = config["Environment"]["Variables"]
    # The key is nowhere in the function's configuration: only the secret's id is.
    assert "CURSOR_SECRET" not in variables
    secret_id = variables["CURSOR_SECRET_ID"]
    # The deploy configured rotation (and, as CloudFormation does on create, rotated once).
    secrets = cloud.client("secretsmanager")
    assert secrets.describe_secret(SecretId=secret_id)["RotationLambdaARN"].endswith(
        next(
            f["FunctionArn"]
            for f in lambdas.list_functions()["Functions"]
            if "CursorRotation" in f["FunctionName"]
        )
    )
    # A short cache age, so the test need not wait out the default five minutes.
    lambdas.update_function_configuration(
        FunctionName=api_function, Environment={"Variables": {**variables, "CURSOR_SECRET_MAX_AGE_S": "1"}}
    )
    page_url = f"{outputs['ApiUrl']}/races/{RACE}/leaderboard?limit=2"
    status, first = _get(page_url)
    assert status == 200 and first["nextCursor"]
    held = first["nextCursor"]
    status, held_page = _get(f"{page_url}&cursor={held}")
    assert status == 200 and held_page["standings"]

    # Given one rotation: AWSCURRENT is a new key, the key that signed the held cursor is AWSPREVIOUS
    secrets.rotate_secret(SecretId=secret_id)
    new_key = json.loads(secrets.get_secret_value(SecretId=secret_id)["SecretString"])["keyId"]
    # Then new cursors are signed with the new key (once the API's cached read has expired)
    _eventually(lambda: f'"{new_key}"' in _cursor_payload(_get(page_url)[1]["nextCursor"]))
    # And the held cursor still pages, to the same rows as before
    status, again = _get(f"{page_url}&cursor={held}")
    assert status == 200 and again["standings"] == held_page["standings"]

    # Given a second rotation, the held cursor's key is neither current nor previous: refused, 400
    secrets.rotate_secret(SecretId=secret_id)
    _eventually(lambda: _get(f"{page_url}&cursor={held}")[0] == 400)
    status, answer = _get(f"{page_url}&cursor={held}")
    assert status == 400 and "expired" in answer["message"]


def _cursor_payload(cursor: str) -> str:
    """The signed JSON inside a cursor (it names the key id)."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    return raw[:-32].decode()
