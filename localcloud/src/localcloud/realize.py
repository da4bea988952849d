"""Finishing a deploy where moto's CloudFormation stops short.

* ``AWS::SNS::Subscription`` (no moto model): subscribed through the SNS API.
* ``AWS::CloudWatch::Alarm`` (no moto model): created with PutMetricAlarm.
* ``AWS::SQS::QueuePolicy`` / ``AWS::SNS::TopicPolicy``: accepted; policies are not enforced locally.
* ``AWS::Lambda::EventInvokeConfig`` (no moto model): put with PutFunctionEventInvokeConfig, which
  localcloud's asynchronous queue obeys (retries, maximum event age, destinations).
* ``AWS::SecretsManager::Secret`` (no moto model): created before the stack under its stand-in
  name, so ``Ref`` and ``{{resolve:secretsmanager:...}}`` both work.
* ``AWS::SecretsManager::RotationSchedule`` (no moto model): RotateSecret with the function and
  rules, which rotates at once (as CloudFormation does on create) by invoking the rotation function's
  four steps; a redeploy with the same function leaves the secret alone.
* S3 buckets' ``NotificationConfiguration`` (moto ignores the property): applied with
  PutBucketNotificationConfiguration, so moto's notifications (routed to the runtime) fire.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

from localcloud.deploy import DeployContext, DeployResult, SkippedHandler, SkippedResource

LOG = logging.getLogger(__name__)

_SUBSCRIPTION_ATTRIBUTES = ("FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")
_ALARM_FIELDS = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def subscribe_sns(item: SkippedResource, context: DeployContext) -> str | None:
    """Create the subscription the template declares (idempotent: SNS returns the existing one)."""
    properties = item.resolved_properties
    if not properties:
        return None
    attributes: dict[str, str] = {}
    for name in _SUBSCRIPTION_ATTRIBUTES:
        if name in properties:
            value = properties[name]
            attributes[name] = value if isinstance(value, str) else json.dumps(value)
    request: dict[str, Any] = {
        "TopicArn": properties["TopicArn"],
        "Protocol": properties["Protocol"],
        "Endpoint": properties["Endpoint"],
    }
    if attributes:
        request["Attributes"] = attributes
    arn = context.client("sns").subscribe(**request, ReturnSubscriptionArn=True)["SubscriptionArn"]
    item.physical_id = arn
    return "sns:Subscribe"


def put_alarm(item: SkippedResource, context: DeployContext) -> str | None:
    """Create or update the alarm with PutMetricAlarm."""
    properties = item.resolved_properties
    if not properties:
        return None
    request = {name: properties[name] for name in _ALARM_FIELDS if name in properties}
    request.setdefault("AlarmName", f"{context.stack_name}-{item.logical_id}")
    for number in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if number in request:
            request[number] = int(request[number])
    if "Threshold" in request:
        request["Threshold"] = float(request["Threshold"])
    context.client("cloudwatch").put_metric_alarm(**request)
    item.physical_id = request["AlarmName"]
    return "cloudwatch:PutMetricAlarm"


_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)


def create_secret(item: SkippedResource, context: DeployContext) -> str | None:
    """Create the secret under its stand-in name before the stack, keeping an existing value."""
    properties = item.definition.get("Properties", {})
    secrets = context.client("secretsmanager")
    try:
        secrets.describe_secret(SecretId=item.physical_id)
        return "secretsmanager:CreateSecret"
    except secrets.exceptions.ResourceNotFoundException:
        pass
    if isinstance(properties.get("SecretString"), str):
        value = properties["SecretString"]
    else:
        generate = properties.get("GenerateSecretString", {})
        options = {name: generate[name] for name in _PASSWORD_OPTIONS if name in generate}
        if "PasswordLength" in options:
            options["PasswordLength"] = int(options["PasswordLength"])
        password = secrets.get_random_password(**options)["RandomPassword"]
        template, key = generate.get("SecretStringTemplate"), generate.get("GenerateStringKey")
        if isinstance(template, str) and isinstance(key, str):
            document = json.loads(template)
            document[key] = password
            value = json.dumps(document)
        else:
            value = password
    request: dict[str, Any] = {"Name": item.physical_id, "SecretString": value}
    if isinstance(properties.get("Description"), str):
        request["Description"] = properties["Description"]
    secrets.create_secret(**request)
    return "secretsmanager:CreateSecret"


def accept_policy(item: SkippedResource, context: DeployContext) -> str | None:
    """Policies are recorded only: localcloud does not enforce IAM."""
    return "not enforced locally"


def put_event_invoke_config(item: SkippedResource, context: DeployContext) -> str | None:
    """Apply a function's asynchronous invocation settings (retries, event age, destinations)."""
    properties = item.resolved_properties or {}
    function = properties.get("FunctionName")
    if not isinstance(function, str) or not function:
        LOG.warning("%s: no FunctionName to configure", item.logical_id)
        return None
    request: dict[str, Any] = {"FunctionName": function}
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if key in properties:
            request[key] = int(properties[key])
    destinations = {
        kind: {"Destination": str(target["Destination"])}
        for kind, target in (properties.get("DestinationConfig") or {}).items()
        if kind in ("OnSuccess", "OnFailure") and isinstance(target, dict) and target.get("Destination")
    }
    if destinations:
        request["DestinationConfig"] = destinations
    lambda_client = context.client("lambda")
    # A redeploy replaces the settings (moto would keep the first ones it was given).
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_function_event_invoke_config(FunctionName=function)
    lambda_client.put_function_event_invoke_config(**request)
    return "lambda:PutFunctionEventInvokeConfig"


def schedule_rotation(item: SkippedResource, context: DeployContext) -> str | None:
    """Configure the secret's rotation and rotate it once, unless this function already rotates it."""
    properties = item.resolved_properties or {}
    secret_id, function = properties.get("SecretId"), properties.get("RotationLambdaARN")
    if not isinstance(secret_id, str) or not isinstance(function, str):
        LOG.warning("%s: only rotation with a RotationLambdaARN is served locally", item.logical_id)
        return None
    secrets = context.client("secretsmanager")
    if secrets.describe_secret(SecretId=secret_id).get("RotationLambdaARN") == function:
        return "secretsmanager:RotateSecret"
    request: dict[str, Any] = {"SecretId": secret_id, "RotationLambdaARN": function}
    rules = properties.get("RotationRules") or {}
    if "AutomaticallyAfterDays" in rules:
        request["RotationRules"] = {"AutomaticallyAfterDays": int(rules["AutomaticallyAfterDays"])}
    secrets.rotate_secret(**request)
    return "secretsmanager:RotateSecret"


# Run before the stack is created: the stack may read these through dynamic references.
PRE_DEPLOY_HANDLERS: dict[str, SkippedHandler] = {
    "AWS::SecretsManager::Secret": create_secret,
}

SKIPPED_HANDLERS: dict[str, SkippedHandler] = {
    "AWS::SNS::Subscription": subscribe_sns,
    "AWS::CloudWatch::Alarm": put_alarm,
    "AWS::SQS::QueuePolicy": accept_policy,
    "AWS::SNS::TopicPolicy": accept_policy,
    "AWS::Lambda::EventInvokeConfig": put_event_invoke_config,
    "AWS::SecretsManager::RotationSchedule": schedule_rotation,
}


def _filter_rules(cfn_filter: dict[str, Any] | None) -> dict[str, Any] | None:
    if not cfn_filter:
        return None
    rules = cfn_filter.get("S3Key", {}).get("Rules", [])
    return {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}


def bucket_notification_request(properties: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation ``NotificationConfiguration`` in the S3 API's shape."""
    configuration: dict[str, Any] = {}
    sections = (
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
    )
    for cfn_key, api_key, cfn_target, api_target in sections:
        entries = []
        for entry in properties.get(cfn_key, []):
            api_entry: dict[str, Any] = {api_target: entry[cfn_target], "Events": [entry["Event"]]}
            rules = _filter_rules(entry.get("Filter"))
            if rules:
                api_entry["Filter"] = rules
            entries.append(api_entry)
        if entries:
            configuration[api_key] = entries
    if properties.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        configuration["EventBridgeConfiguration"] = {}
    return configuration


def apply_bucket_notifications(result: DeployResult, context: DeployContext) -> None:
    """Post-deploy step: put each bucket's NotificationConfiguration through the S3 API."""
    resources = result.translated_template.get("Resources", {})
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::S3::Bucket":
            continue
        notification = resource.get("Properties", {}).get("NotificationConfiguration")
        if not notification or logical_id not in result.resources:
            continue
        resolved = context.resolve(notification)
        context.client("s3").put_bucket_notification_configuration(
            Bucket=result.resources[logical_id],
            NotificationConfiguration=bucket_notification_request(resolved),
        )
