"""pipeline.yaml, the CI/CD account setup: who may assume the deploy role, and what each role may do.

The properties that keep a GitHub token from becoming account admin are checked here rather than
trusted to review: no wildcard actions, "*" resources only where AWS offers no resource scoping,
a trust policy naming exactly this repository's deploy branch and production environment, and a
deploy role that can pass no role but the CloudFormation execution role.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.tables import load_template

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline.yaml"

# Actions AWS authorises only against Resource "*" (no resource-level permissions exist for them).
STAR_RESOURCE_ACTIONS = {
    "lambda:CreateEventSourceMapping",
    "lambda:ListEventSourceMappings",
    "secretsmanager:GetRandomPassword",
    "cognito-identity:CreateIdentityPool",
}
EXECUTION_ROLE_ARN = {"GetAtt": "CloudFormationExecutionRole.Arn"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(PIPELINE)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every policy document in the template, named ``<logical id>/<policy>``."""
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if "AssumeRolePolicyDocument" in props:
            yield f"{name}/trust", props["AssumeRolePolicyDocument"]
        for policy in props.get("Policies", []):
            yield f"{name}/{policy['PolicyName']}", policy["PolicyDocument"]
        if "PolicyDocument" in props:
            yield name, props["PolicyDocument"]


def _statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for where, document in _policy_documents(template):
        for statement in document["Statement"]:
            yield f"{where}/{statement.get('Sid', '?')}", statement


def _role_statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [s for p in policies for s in p["PolicyDocument"]["Statement"]]


def test_the_template_has_policies_to_check(template: dict[str, Any]) -> None:
    # Guards the tests below against passing vacuously on a template they cannot read.
    assert len(list(_statements(template))) > 20


def test_no_action_contains_a_wildcard(template: dict[str, Any]) -> None:
    offenders = [
        (where, action)
        for where, statement in _statements(template)
        for action in _as_list(statement.get("Action", []))
        if "*" in action
    ]
    assert offenders == []
    assert not [where for where, statement in _statements(template) if "NotAction" in statement]


def test_star_resources_only_where_aws_requires_them(template: dict[str, Any]) -> None:
    for where, statement in _statements(template):
        if statement["Effect"] == "Allow" and "*" in _as_list(statement.get("Resource", [])):
            assert set(_as_list(statement["Action"])) <= STAR_RESOURCE_ACTIONS, where


def test_oidc_provider_is_githubs_for_sts_and_optional(template: dict[str, Any]) -> None:
    provider = template["Resources"]["GitHubOidcProvider"]
    assert provider["Type"] == "AWS::IAM::OIDCProvider"
    assert provider["Properties"]["Url"] == "https://token.actions.githubusercontent.com"
    assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
    # An account holds one provider per URL: an existing one can be reused instead.
    assert provider["Condition"] == "CreateOidcProvider"
    assert template["Conditions"]["CreateOidcProvider"] == {
        "Equals": [{"Ref": "ExistingOidcProviderArn"}, ""]
    }


def test_trust_policy_names_this_repository_only(template: dict[str, Any]) -> None:
    (statement,) = template["Resources"]["GitHubDeployRole"]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"] == {
        "If": ["CreateOidcProvider", {"Ref": "GitHubOidcProvider"}, {"Ref": "ExistingOidcProviderArn"}]
    }
    # Exact matches only: a StringLike condition is where wildcards would creep in.
    assert set(statement["Condition"]) == {"StringEquals"}
    condition = statement["Condition"]["StringEquals"]
    assert condition["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    subjects = [s["Sub"] for s in _as_list(condition["token.actions.githubusercontent.com:sub"])]
    assert sorted(subjects) == [
        "repo:${GitHubOrg}/${RepositoryName}:environment:${ProductionEnvironment}",
        "repo:${GitHubOrg}/${RepositoryName}:ref:refs/heads/${DeployBranch}",
    ]
    assert not [s for s in subjects if "*" in s]


@pytest.mark.parametrize("name", ["GitHubOrg", "RepositoryName", "DeployBranch", "ProductionEnvironment"])
def test_subject_parameters_refuse_wildcards(template: dict[str, Any], name: str) -> None:
    pattern = template["Parameters"][name]["AllowedPattern"]
    # CloudFormation matches AllowedPattern against the whole value.
    assert re.fullmatch(pattern, "alleycat-repo")
    for value in ("*", "org*", "a/*", "?"):
        assert not re.fullmatch(pattern, value), (name, value)


def test_deploy_role_can_pass_only_the_execution_role(template: dict[str, Any]) -> None:
    passes = [
        s for s in _role_statements(template, "GitHubDeployRole") if "iam:PassRole" in _as_list(s["Action"])
    ]
    assert passes, "the deploy role must pass the execution role to CloudFormation"
    for statement in passes:
        assert _as_list(statement["Action"]) == ["iam:PassRole"]
        assert _as_list(statement["Resource"]) == [EXECUTION_ROLE_ARN]
        assert statement["Condition"] == {
            "StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}
        }


def test_deploy_role_creates_change_sets_only_through_the_execution_role(template: dict[str, Any]) -> None:
    for statement in _role_statements(template, "GitHubDeployRole"):
        if "cloudformation:CreateChangeSet" not in _as_list(statement["Action"]):
            continue
        resources = [r["Sub"] for r in _as_list(statement["Resource"])]
        if resources == [
            "arn:${AWS::Partition}:cloudformation:${AWS::Region}:aws:transform/Serverless-2016-10-31"
        ]:
            continue  # the SAM transform: no stack, no role
        assert resources == [
            "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${StackPrefix}-*/*"
        ]
        assert statement["Condition"] == {"ArnEquals": {"cloudformation:RoleArn": EXECUTION_ROLE_ARN}}


def test_deploy_role_touches_only_the_apps_stacks_and_the_artifact_bucket(template: dict[str, Any]) -> None:
    for statement in _role_statements(template, "GitHubDeployRole"):
        for action in _as_list(statement["Action"]):
            service = action.split(":")[0]
            assert service in {"cloudformation", "iam", "s3", "kinesis", "kms"}, action
        for resource in _as_list(statement["Resource"]):
            text = resource.get("Sub", "") if isinstance(resource, dict) else resource
            assert (
                "${StackPrefix}-" in text
                or "${ArtifactBucket.Arn}" in text
                or text.endswith(":aws:transform/Serverless-2016-10-31")
                or resource in (EXECUTION_ROLE_ARN, {"GetAtt": "ArtifactBucket.Arn"})
                or (text.endswith(":key/*") and "kms:ViaService" in str(statement.get("Condition")))
            ), resource


def test_execution_role_is_for_cloudformation_and_passes_only_app_roles(template: dict[str, Any]) -> None:
    role = template["Resources"]["CloudFormationExecutionRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cloudformation.amazonaws.com"}
    for statement in _role_statements(template, "CloudFormationExecutionRole"):
        if "iam:PassRole" in _as_list(statement["Action"]):
            assert statement["Resource"] == {
                "Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${StackPrefix}-*"
            }
            assert "iam:PassedToService" in statement["Condition"]["StringEquals"]


def test_pipeline_roles_are_named_outside_the_app_prefix(template: dict[str, Any]) -> None:
    # The execution role may edit roles named <StackPrefix>-*; were the pipeline's own roles named
    # so, a stack deployed through the pipeline could widen them.
    for name in ("CloudFormationExecutionRole", "GitHubDeployRole"):
        role_name = template["Resources"][name]["Properties"]["RoleName"]["Sub"]
        assert not role_name.startswith("${StackPrefix}"), role_name


def test_outputs_give_the_repository_variables(template: dict[str, Any]) -> None:
    assert {"DeployRoleArn", "CloudFormationExecutionRoleArn", "ArtifactBucketName"} <= set(
        template["Outputs"]
    )
