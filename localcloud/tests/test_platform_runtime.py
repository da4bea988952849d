"""The Lambda runtime: warm workers, context, environment, timeouts, crashes, concurrency, logs."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from localcloud.invocation import FunctionNotFoundError

from localcloud import LocalCloud, TooManyRequestsError

TEMPLATE = Path(__file__).parent / "templates" / "platform_runtime" / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    with LocalCloud(state_dir=tmp_path_factory.mktemp("runtime-state")) as local:
        yield local


@pytest.fixture(scope="module")
def outputs(cloud: LocalCloud) -> dict[str, str]:
    return cloud.deploy(TEMPLATE, "runtime").outputs


def test_warm_invocations_keep_module_state_and_process(cloud, outputs):
    # Given a deployed function
    name = outputs["ContextFunctionName"]

    # When it is invoked twice
    first = cloud.invoke(name, {})
    second = cloud.invoke(name, {})

    # Then the second call reuses the warm worker and its module state
    assert first.ok and second.ok
    assert second.payload["calls"] == first.payload["calls"] + 1
    assert second.payload["pid"] == first.payload["pid"] == first.payload["cold_start_pid"]


def test_context_object_has_lambda_fields(cloud, outputs):
    name = outputs["ContextFunctionName"]

    result = cloud.invoke(name, {})

    context = result.payload["context"]
    assert context["function_name"] == name
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
    assert context["memory_limit_in_mb"] == 192
    assert context["aws_request_id"] == result.request_id
    assert context["log_group_name"] == f"/aws/lambda/{name}"
    assert "[$LATEST]" in context["log_stream_name"]
    # Timeout is 10 s: the remaining time is a little under that.
    assert 8000 < context["remaining_ms"] <= 10000


def test_environment_has_function_and_lambda_variables(cloud, outputs):
    name = outputs["ContextFunctionName"]
    keys = [
        "COLOUR",
        "TABLE_NAME",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_TIMEOUT",
        "_HANDLER",
        "LAMBDA_TASK_ROOT",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "_X_AMZN_TRACE_ID",
    ]

    result = cloud.invoke(name, {"env": keys})

    env = result.payload["env"]
    code_dir = str(TEMPLATE.parent / "src")
    assert env["COLOUR"] == "teal"
    assert env["TABLE_NAME"] == outputs["TableName"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "192"
    assert env["AWS_LAMBDA_FUNCTION_TIMEOUT"] == "10"
    assert env["_HANDLER"] == "context_handler.handler"
    assert env["LAMBDA_TASK_ROOT"] == code_dir
    assert result.payload["cwd"] == code_dir
    assert env["AWS_ENDPOINT_URL"] == cloud.endpoint_url
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-") and env["_X_AMZN_TRACE_ID"].endswith(";Sampled=0")


def test_platform_environment_reaches_every_function(cloud, outputs):
    name = outputs["ContextFunctionName"]
    before = cloud.invoke(name, {})

    cloud.add_function_environment({"AWS_ENDPOINT_URL_IOT_DATA_PLANE": "http://127.0.0.1:1"})
    result = cloud.invoke(name, {"env": ["AWS_ENDPOINT_URL_IOT_DATA_PLANE", "COLOUR"]})

    assert result.payload["env"] == {
        "AWS_ENDPOINT_URL_IOT_DATA_PLANE": "http://127.0.0.1:1",
        "COLOUR": "teal",
    }
    assert result.payload["pid"] != before.payload["pid"]  # fresh workers carry the new variables


def test_boto3_inside_a_handler_reaches_the_local_endpoint(cloud, outputs):
    name = outputs["ContextFunctionName"]

    result = cloud.invoke(name, {"write_item": "from-handler"})

    assert result.ok, result.payload
    item = cloud.client("dynamodb").get_item(
        TableName=outputs["TableName"], Key={"pk": {"S": "from-handler"}}
    )
    assert item["Item"]["pk"]["S"] == "from-handler"


def test_timeout_is_a_function_error_and_the_next_invocation_works(cloud, outputs):
    name = outputs["SlowFunctionName"]
    warm = cloud.invoke(name, {"sleep": 0})

    started = time.monotonic()
    timed_out = cloud.invoke(name, {"sleep": 5})
    elapsed = time.monotonic() - started

    assert timed_out.function_error == "Unhandled"
    assert timed_out.error_kind == "timeout"
    assert timed_out.payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in timed_out.payload["errorMessage"]
    assert elapsed < 3.0
    after = cloud.invoke(name, {"sleep": 0})
    assert after.ok
    assert after.payload["pid"] != warm.payload["pid"]
    assert "Task timed out after 1.00 seconds" in cloud.runtime.log(name).text()


def test_raised_exception_returns_lambda_error_object_and_keeps_the_worker(cloud, outputs):
    name = outputs["FailingFunctionName"]
    before = cloud.invoke(name, {})

    result = cloud.invoke(name, {"how": "raise"})

    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "RaceNotFoundError"
    assert result.payload["errorMessage"] == "race 42 does not exist"
    assert isinstance(result.payload["stackTrace"], list) and result.payload["stackTrace"]
    assert "[ERROR] RaceNotFoundError: race 42 does not exist" in result.log_tail
    # A raised exception does not end the execution environment.
    assert cloud.invoke(name, {}).payload["pid"] == before.payload["pid"]


@pytest.mark.parametrize(
    ("how", "exit_description"),
    [
        ("sys.exit", "exit status 3"),
        ("os._exit", "exit status 7"),
        ("segfault", "signal: segmentation fault"),
    ],
)
def test_exiting_or_crashing_handler_is_reported_and_replaced(cloud, outputs, how, exit_description):
    name = outputs["FailingFunctionName"]
    before = cloud.invoke(name, {})

    result = cloud.invoke(name, {"how": how})

    assert result.function_error == "Unhandled"
    assert result.error_kind == "crash"
    assert result.payload["errorType"] == "Runtime.ExitError"
    assert exit_description in result.payload["errorMessage"]
    after = cloud.invoke(name, {})
    assert after.ok
    assert after.payload["pid"] != before.payload["pid"]


def test_unserialisable_result_is_a_marshal_error(cloud, outputs):
    result = cloud.invoke(outputs["FailingFunctionName"], {"how": "unserialisable"})

    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Runtime.MarshalError"


@pytest.mark.parametrize(
    "value",
    [
        {"name": "Zoë 🚲", "numbers": [1, 2.5, -0.0, 1e300, None, True], "deep": {"a": {"b": [], "c": {}}}},
        [{"quotes": '"\\\n\t', "empty": ""}],
        "just text",
        0,
        None,
    ],
)
def test_a_result_of_any_json_shape_comes_back_exactly(cloud, outputs, value):
    # Given a function that returns what it is sent
    name = outputs["FailingFunctionName"]
    # When it returns each shape of JSON value
    result = cloud.invoke(name, {"how": "echo", "value": value})
    # Then the result is that value, exactly
    assert result.ok, result.payload
    assert result.payload == value
    assert json.dumps(result.payload) == json.dumps(value)


def test_request_ids_are_distinct_version_4_uuids_the_handler_sees(cloud, outputs):
    results = [cloud.invoke(outputs["ContextFunctionName"], {}) for _ in range(5)]
    ids = [result.request_id for result in results]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(request_id).version == 4 for request_id in ids)
    assert [result.payload["context"]["aws_request_id"] for result in results] == ids


def test_import_error_is_reported_as_init_failure(cloud, outputs):
    result = cloud.invoke(outputs["BrokenImportFunctionName"], {})

    assert result.function_error == "Unhandled"
    assert result.payload["errorType"] == "Runtime.ImportModuleError"
    assert "missing_module" in result.payload["errorMessage"]


def test_reserved_concurrency_throttles_beyond_the_limit(cloud, outputs):
    # Given a function with ReservedConcurrentExecutions: 1, busy with one invocation
    name = outputs["SingleFunctionName"]
    no_retries = boto3.client(
        "lambda",
        endpoint_url=cloud.endpoint_url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1}),
    )
    cloud.invoke(name, {"sleep": 0})  # warm it so the busy window is the sleep alone
    results = []
    busy = threading.Thread(target=lambda: results.append(cloud.invoke(name, {"sleep": 2})))
    busy.start()
    deadline = time.monotonic() + 2
    while cloud.runtime.pool(name).busy == 0 and time.monotonic() < deadline:
        time.sleep(0.01)

    # When a second invocation arrives, directly and through the Lambda API
    with pytest.raises(TooManyRequestsError):
        cloud.invoke(name, {"sleep": 0})
    with pytest.raises(ClientError) as api_error:
        no_retries.invoke(FunctionName=name, Payload=b"{}")

    # Then both are throttled, and the first invocation is unaffected
    assert api_error.value.response["Error"]["Code"] == "TooManyRequestsException"
    busy.join()
    assert results[0].ok
    assert cloud.invoke(name, {"sleep": 0}).ok


def test_unreserved_function_runs_invocations_in_parallel(cloud, outputs):
    name = outputs["SlowFunctionName"]
    results = []

    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: results.append(cloud.invoke(name, {"sleep": 0.5}))) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(r.ok for r in results)
    assert len({r.payload["pid"] for r in results}) == 3
    assert time.monotonic() - started < 1.4


def test_log_has_start_end_report_lines_in_file_memory_and_cloudwatch(cloud, outputs):
    name = outputs["ContextFunctionName"]

    result = cloud.invoke(name, {})

    rid = result.request_id
    lines = cloud.runtime.log(name).lines()
    start = lines.index(f"START RequestId: {rid} Version: $LATEST")
    end = lines.index(f"END RequestId: {rid}")
    assert start < end
    assert any(line.startswith("context handler call") for line in lines[start:end])
    report = lines[end + 1]
    assert report.startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "Billed Duration: " in report and "Memory Size: 192 MB" in report
    assert f"START RequestId: {rid}" in result.log_tail
    log_file = cloud.state_dir / "logs" / f"{name}.log"
    assert f"REPORT RequestId: {rid}" in log_file.read_text()
    events = cloud.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
    assert any(e["message"] == f"END RequestId: {rid}" for e in events)


def test_lambda_invoke_api_runs_the_function(cloud, outputs):
    name = outputs["FailingFunctionName"]
    client = cloud.client("lambda")

    ok = client.invoke(FunctionName=name, Payload=json.dumps({}).encode())
    failed = client.invoke(FunctionName=name, Payload=json.dumps({"how": "raise"}).encode(), LogType="Tail")

    assert ok["StatusCode"] == 200 and "FunctionError" not in ok
    assert "pid" in json.loads(ok["Payload"].read())
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "RaceNotFoundError"
    assert failed["LogResult"]


def test_unknown_function_raises_not_found(cloud, outputs):
    with pytest.raises(FunctionNotFoundError):
        cloud.invoke("no-such-function", {})


def test_function_created_through_the_api_runs_from_its_zip(cloud, outputs):
    # Given a function created with a real zip, not by a deploy
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("shout.py", "def handler(event, context):\n    return event['text'].upper()\n")
    role = cloud.client("iam").create_role(
        RoleName="shouter-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    cloud.client("lambda").create_function(
        FunctionName="shouter",
        Runtime="python3.11",
        Role=role,
        Handler="shout.handler",
        Code={"ZipFile": archive.getvalue()},
    )

    # When it is invoked
    result = cloud.invoke("shouter", {"text": "sprint"})

    # Then its code ran from the unpacked zip
    assert result.ok, result.payload
    assert result.payload == "SPRINT"
