"""Deploying SAM templates: names, ARNs, environment, outputs, redeploys and stripped resources."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from localcloud.deploy import strip_unsupported, translate, unsupported_resource_types
from localcloud.templates import parse_template

from localcloud import DeployError, LocalCloud

TEMPLATE_DIR = Path(__file__).parent / "templates" / "platform_basic"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A private copy of the template folder, so a test may edit the code."""
    target = tmp_path / "project"
    shutil.copytree(TEMPLATE_DIR, target)
    return target


@pytest.fixture
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud() as local:
        yield local


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_deploy_creates_resources_with_names_env_and_outputs(cloud, project):
    # When the basic stack is deployed with a parameter override
    result = cloud.deploy(project / "template.yaml", "basic", parameters={"Greeting": "bonjour"})

    # Then outputs name the real resources
    assert result.status == "CREATE_COMPLETE"
    outputs = result.outputs
    assert (
        outputs["QueueUrl"].endswith("/123456789012/" + result.resources["Queue"])
        or "basic-Queue" in outputs["QueueUrl"]
    )
    assert outputs["TableName"] == result.resources["Table"]
    assert (
        cloud.client("dynamodb").describe_table(TableName=outputs["TableName"])["Table"]["TableStatus"]
        == "ACTIVE"
    )
    stream = cloud.client("kinesis").describe_stream_summary(StreamName=outputs["StreamArn"].split("/")[-1])
    assert stream["StreamDescriptionSummary"]["StreamARN"] == outputs["StreamArn"]
    # And the function is configured as the template says, its source folder remembered
    function_name = outputs["FunctionName"]
    source = result.functions[function_name]
    assert source.logical_id == "EchoFunction"
    assert source.code_dir == (project / "src").resolve()
    assert source.function_arn == f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    config = cloud.client("lambda").get_function_configuration(FunctionName=function_name)
    assert config["Handler"] == "app.handler"
    assert config["Timeout"] == 5 and config["MemorySize"] == 256
    env = config["Environment"]["Variables"]
    assert env["GREETING"] == "bonjour"
    assert env["TABLE_NAME"] == outputs["TableName"]
    assert env["QUEUE_URL"] == outputs["QueueUrl"]
    # And the handler runs from the folder with that environment
    payload = cloud.invoke(function_name, {"n": 1}).payload
    assert payload["greeting"] == "bonjour"
    assert payload["event"] == {"n": 1}


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_unsupported_resources_are_reported_not_dropped(cloud, project):
    result = cloud.deploy(project / "template.yaml", "basic")

    skipped = {item.logical_id: item for item in result.skipped}
    assert skipped["ServerlessRestApi"].resource_type == "AWS::ApiGateway::RestApi"
    assert skipped["ServerlessRestApiProdStage"].resource_type == "AWS::ApiGateway::Stage"
    # The translated definition is kept, with references to deployed resources resolved
    rest_api = skipped["ServerlessRestApi"]
    assert "Body" in rest_api.definition["Properties"]
    uri = rest_api.resolved_properties["Body"]["paths"]["/echo"]["get"]["x-amazon-apigateway-integration"][
        "uri"
    ]
    assert result.functions[result.outputs["FunctionName"]].function_arn in uri
    # References to stripped resources received the stand-in id
    assert result.outputs["ApiUrl"] == (
        f"https://{rest_api.physical_id}.execute-api.us-east-1.amazonaws.com/Prod/echo"
    )
    # Resources localcloud serves itself say so
    assert skipped["EchoFunctionFromTopic"].handled_by == "sns:Subscribe"
    assert skipped["QueueAlarm"].handled_by == "cloudwatch:PutMetricAlarm"
    alarms = cloud.client("cloudwatch").describe_alarms(AlarmNames=["basic-queue-depth"])["MetricAlarms"]
    assert alarms[0]["Threshold"] == 10.0
    assert rest_api.handled_by is None


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_redeploy_updates_environment_and_code(cloud, project):
    # Given a deployed and warm function
    first = cloud.deploy(project / "template.yaml", "basic", parameters={"Greeting": "hello"})
    name = first.outputs["FunctionName"]
    assert cloud.invoke(name, {}).payload["version"] == "1"

    # When the template's parameter and the handler's code change and the stack is redeployed
    app = project / "src" / "app.py"
    app.write_text(app.read_text().replace('os.environ.get("CODE_VERSION", "1")', '"2"'))
    second = cloud.deploy(project / "template.yaml", "basic", parameters={"Greeting": "howdy"})

    # Then the same stack was updated and the next invocation sees both changes
    assert second.updated and second.stack_id == first.stack_id
    assert second.outputs["FunctionName"] == name
    payload = cloud.invoke(name, {}).payload
    assert payload["greeting"] == "howdy"
    assert payload["version"] == "2"
    assert payload["invocations"] == 1  # a fresh worker


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_secrets_exist_before_the_stack_and_dynamic_references_resolve(cloud, project):
    # When a template with a generated secret read through {{resolve:secretsmanager:...}} is deployed
    first = cloud.deploy(project / "template.yaml", "basic")
    name = first.outputs["FunctionName"]
    env = cloud.client("lambda").get_function_configuration(FunctionName=name)["Environment"]["Variables"]

    # Then the secret exists under the id its Ref gave, and the reference became its value
    secret = json.loads(
        cloud.client("secretsmanager").get_secret_value(SecretId=env["SECRET_ID"])["SecretString"]
    )
    assert secret["user"] == "racer"
    assert len(secret["password"]) == 20 and secret["password"].isalnum()
    assert env["API_PASSWORD"] == secret["password"]
    skipped = {item.logical_id: item for item in first.skipped}
    assert skipped["ApiKeySecret"].handled_by == "secretsmanager:CreateSecret"
    # And a redeploy keeps the generated value
    cloud.deploy(project / "template.yaml", "basic")
    env_again = cloud.client("lambda").get_function_configuration(FunctionName=name)["Environment"][
        "Variables"
    ]
    assert env_again["API_PASSWORD"] == secret["password"]


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_redeploy_without_changes_is_fine(cloud, project):
    first = cloud.deploy(project / "template.yaml", "basic")
    second = cloud.deploy(project / "template.yaml", "basic")

    assert second.updated
    assert second.outputs == first.outputs


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_missing_code_folder_is_a_deploy_error(cloud, project):
    shutil.rmtree(project / "src")

    with pytest.raises(DeployError, match="CodeUri"):
        cloud.deploy(project / "template.yaml", "basic")


def test_translation_and_stripping_rewrite_references_offline():
    template = parse_template(
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/key.zip
      Handler: app.handler
      Runtime: python3.11
      Events:
        Get: {Type: Api, Properties: {Path: /x, Method: get}}
  Rule:
    Type: AWS::IoT::TopicRule
    Properties:
      TopicRulePayload: {Sql: "SELECT * FROM 'a'", Actions: []}
Outputs:
  Url: {Value: !Sub "https://${ServerlessRestApi}.example/${Rule.Arn}"}
  RuleName: {Value: !Ref Rule}
"""
    )
    translated = translate(template, {}, "us-east-1")

    unsupported = unsupported_resource_types(translated["Resources"])
    stripped, skipped = strip_unsupported(translated, "s")

    assert unsupported["Rule"] == "AWS::IoT::TopicRule"
    assert unsupported["ServerlessRestApi"] == "AWS::ApiGateway::RestApi"
    assert "Rule" not in stripped["Resources"] and "ServerlessRestApi" not in stripped["Resources"]
    ids = {s.logical_id: s.physical_id for s in skipped}
    assert stripped["Outputs"]["Url"]["Value"] == {
        "Fn::Sub": f"https://{ids['ServerlessRestApi']}.example/{ids['Rule']}.Arn"
    }
    assert stripped["Outputs"]["RuleName"]["Value"] == ids["Rule"]
    assert all("ServerlessRestApi" not in str(r.get("DependsOn", "")) for r in stripped["Resources"].values())


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_other_servers_can_share_the_port_and_follow_deploys(cloud, project):
    # Given a WSGI app mounted on the endpoint and a deploy listener
    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"hello {environ['PATH_INFO']}".encode()]

    url = cloud.mount("/_localcloud/hello", hello)
    seen = []
    cloud.on_deploy(lambda result: seen.append([s.logical_id for s in result.skipped]))

    # When a stack is deployed and the mounted path is requested
    cloud.deploy(project / "template.yaml", "basic")
    with urllib.request.urlopen(f"{url}/world", timeout=5) as response:
        body = response.read()

    # Then the app answered on the shared port, moto still serves the rest, and the listener ran
    assert url == f"{cloud.endpoint_url}/_localcloud/hello"
    assert body == b"hello /_localcloud/hello/world"
    assert cloud.client("sqs").list_queues()["QueueUrls"]
    assert "ServerlessRestApi" in seen[0]


def test_invalid_sam_template_is_a_deploy_error_with_the_reason():
    template = parse_template(
        """
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: s3://bucket/key.zip
      Handler: app.handler
      Runtime: python3.11
      Events:
        Odd: {Type: CarrierPigeon}
"""
    )

    with pytest.raises(DeployError, match="CarrierPigeon"):
        translate(template, {}, "us-east-1")
