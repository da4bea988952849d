"""Deploying a SAM (or plain CloudFormation) template into moto's CloudFormation.

The path is: template file → local ``CodeUri`` folders swapped for placeholder S3 objects →
aws-sam-translator → resources moto cannot create are stripped (and reported, with their
translated definitions kept for localcloud's own servers) → ``create_stack`` / ``update_stack``.

Function code never travels through moto: each function's real source folder is remembered and
handed to the runtime, which imports handlers straight from it.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError
from moto.cloudformation.models import cloudformation_backends
from moto.cloudformation.parsing import NULL_MODELS, clean_json, get_model_map
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from localcloud.aws import ACCOUNT_ID, FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY
from localcloud.dynamic_refs import resolve_dynamic_references
from localcloud.runtime.spec import PLACEHOLDER_MEMBER
from localcloud.templates import load_template

LOG = logging.getLogger(__name__)

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
# Placeholder code objects live here; the runtime never reads them.
CODE_BUCKET = "localcloud-function-code"
# moto has models for some API Gateway resources but cannot create what SAM emits (RestApi with an
# OpenAPI Body); localcloud serves these itself, so they are always stripped.
LOCALLY_SERVED_PREFIXES = ("AWS::ApiGateway::", "AWS::ApiGatewayV2::")
# Folders that are never function code (hidden folders such as .git, .venv or a state folder are
# skipped too), so the digest only moves when code does.
_SKIPPED_FOLDERS = {"__pycache__", "node_modules"}
# Layer resource type → the property naming its content (a local folder before packaging).
_LAYER_CONTENT_PROPERTY = {
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Lambda::LayerVersion": "Content",
}


class DeployError(RuntimeError):
    """The stack could not be created or updated."""


@dataclass(frozen=True)
class FunctionSource:
    """Where one deployed function's code comes from."""

    logical_id: str
    function_name: str
    function_arn: str
    # The folder the handler is imported from (CodeUri resolved against the template's folder);
    # None when the code only exists inside moto (inline ZipFile / InlineCode, or an S3 object).
    code_dir: Path | None


@dataclass
class SkippedResource:
    """A resource moto's CloudFormation cannot create, stripped from the stack before deploying.

    ``definition`` is the translated CloudFormation resource (Type, Properties, ...) as written;
    ``resolved_properties`` has Ref / GetAtt / Sub resolved against the deployed stack where that
    was possible. ``physical_id`` is the stand-in id that other resources' Ref / GetAtt received.
    ``handled_by`` names what inside localcloud serves the resource, or is None when nothing does.
    """

    logical_id: str
    resource_type: str
    definition: dict[str, Any]
    physical_id: str
    resolved_properties: dict[str, Any] | None = None
    handled_by: str | None = None


@dataclass
class DeployResult:
    """What a deploy produced."""

    stack_name: str
    stack_id: str
    status: str
    outputs: dict[str, str]
    # Logical id → physical id of every created resource.
    resources: dict[str, str]
    functions: dict[str, FunctionSource]
    skipped: list[SkippedResource]
    # The CloudFormation template after the SAM transform, before stripping.
    translated_template: dict[str, Any] = field(repr=False, default_factory=dict)
    updated: bool = False


class _ManagedPolicyMap(dict[str, str]):
    """Answers every managed-policy name with its ARN, so the translator never calls IAM."""

    def get(self, key: str, default: Any = None) -> str:
        return f"arn:aws:iam::aws:policy/{key}"


def stand_in_id(stack_name: str, logical_id: str) -> str:
    """A stable, id-shaped stand-in physical id for a resource localcloud stripped."""
    digest = hashlib.sha1(f"{stack_name}/{logical_id}".encode(), usedforsecurity=False).hexdigest()
    return digest[:10]


def _stand_in_for(stack_name: str, logical_id: str, resource_type: str, definition: dict[str, Any]) -> str:
    if resource_type == "AWS::SecretsManager::Secret":
        # A secret's Ref is its ARN on AWS; its name works in every Secrets Manager call, and
        # localcloud creates the secret under exactly this name.
        name = definition.get("Properties", {}).get("Name")
        return name if isinstance(name, str) else f"{stack_name}-{logical_id}"
    return stand_in_id(stack_name, logical_id)


def folder_digest(folder: Path) -> str:
    """A short digest of a source folder's file names, sizes and modification times.

    It goes into the placeholder code key, so a code change shows up as a function update.
    """
    hasher = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in _SKIPPED_FOLDERS and not d.startswith(".") and not d.endswith(".egg-info")
        )
        for name in sorted(files):
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            hasher.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return hasher.hexdigest()[:16]


def _placeholder_zip(code_dir: Path, key: str, python_path: Path | None = None) -> bytes:
    # The key carries the folder's digest, so the zip (and moto's CodeSha256) changes with the code.
    # The folder is recorded in the zip too: after a restart the runtime finds it there. A layer's
    # zip also records the folder its functions import from (``python_path``).
    buffer = io.BytesIO()
    recorded: dict[str, str] = {"code_dir": str(code_dir), "key": key}
    if python_path is not None:
        recorded["python_path"] = str(python_path)
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(PLACEHOLDER_MEMBER, json.dumps(recorded))
    return buffer.getvalue()


def layer_python_path(content_dir: Path, build_method: Any) -> Path:
    """The folder of a local layer that Lambda would put on ``sys.path``.

    Lambda unpacks a layer under ``/opt`` and puts ``/opt/python`` on the path. ``sam build`` with a
    ``python3.x`` BuildMethod copies the folder into ``python/`` itself, so then the folder is what
    functions import from; an unbuilt layer must carry its own ``python/`` folder, as on AWS.
    """
    if isinstance(build_method, str) and build_method.startswith("python"):
        return content_dir
    return content_dir / "python"


def _is_local_code_uri(code_uri: Any) -> bool:
    return isinstance(code_uri, str) and not code_uri.startswith("s3://")


class TemplatePreparer:
    """Swaps local ``CodeUri`` folders for placeholder S3 locations and remembers the folders."""

    def __init__(self, stack_name: str, template_dir: Path) -> None:
        self.stack_name = stack_name
        self.template_dir = template_dir
        # logical id → (source folder, S3 key of the placeholder)
        self.code_dirs: dict[str, tuple[Path, str]] = {}
        # layer logical id → (content folder, S3 key of the placeholder, folder put on sys.path)
        self.layer_dirs: dict[str, tuple[Path, str, Path]] = {}

    def prepare(self, template: dict[str, Any]) -> dict[str, Any]:
        """Return a copy of ``template`` whose functions point at placeholder code objects."""
        template = copy.deepcopy(template)
        globals_function = template.get("Globals", {}).get("Function", {})
        global_code_uri = globals_function.get("CodeUri")
        for logical_id, resource in template.get("Resources", {}).items():
            if isinstance(resource, dict) and resource.get("Type") in _LAYER_CONTENT_PROPERTY:
                self._prepare_layer(logical_id, resource)
                continue
            if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
                continue
            properties = resource.setdefault("Properties", {})
            if "InlineCode" in properties or "ImageUri" in properties:
                continue
            code_uri = properties.get("CodeUri", global_code_uri)
            if code_uri is None:
                code_uri = "."
            if not _is_local_code_uri(code_uri):
                continue
            code_dir = (self.template_dir / code_uri).resolve()
            if not code_dir.is_dir():
                raise DeployError(f"{logical_id}: CodeUri {code_uri!r} is not a folder next to the template")
            key = f"{self.stack_name}/{logical_id}/{folder_digest(code_dir)}.zip"
            properties["CodeUri"] = f"s3://{CODE_BUCKET}/{key}"
            self.code_dirs[logical_id] = (code_dir, key)
        return template

    def _prepare_layer(self, logical_id: str, resource: dict[str, Any]) -> None:
        """Point a layer with a local content folder at a placeholder object, remembering the folder."""
        content_property = _LAYER_CONTENT_PROPERTY[resource["Type"]]
        properties = resource.setdefault("Properties", {})
        content = properties.get(content_property)
        if not _is_local_code_uri(content):
            return  # already in S3 (or inline): moto keeps it, the runtime unpacks it
        content_dir = (self.template_dir / content).resolve()
        if not content_dir.is_dir():
            raise DeployError(
                f"{logical_id}: {content_property} {content!r} is not a folder next to the template"
            )
        key = f"{self.stack_name}/{logical_id}/{folder_digest(content_dir)}.zip"
        if content_property == "ContentUri":
            properties[content_property] = f"s3://{CODE_BUCKET}/{key}"
        else:
            properties[content_property] = {"S3Bucket": CODE_BUCKET, "S3Key": key}
        build_method = (resource.get("Metadata") or {}).get("BuildMethod")
        self.layer_dirs[logical_id] = (content_dir, key, layer_python_path(content_dir, build_method))


def translate(template: dict[str, Any], parameters: Mapping[str, str], region: str) -> dict[str, Any]:
    """Run the SAM transform offline (no IAM or S3 calls); plain CloudFormation passes through."""
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    if SAM_TRANSFORM not in transforms:
        return copy.deepcopy(template)
    session = boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=region,
    )
    translator = Translator(_ManagedPolicyMap(), Parser(), boto_session=session)
    try:
        translated: dict[str, Any] = translator.translate(
            copy.deepcopy(template),
            parameter_values=dict(parameters),
            get_managed_policy_map=_ManagedPolicyMap,
        )
    except InvalidDocumentException as exc:
        reasons = "; ".join(getattr(cause, "message", str(cause)) for cause in exc.causes)
        raise DeployError(f"the SAM template is invalid: {reasons}") from exc
    # Any other (unknown) transforms cannot be run locally; drop the SAM one that was applied.
    remaining = [t for t in transforms if t and t != SAM_TRANSFORM]
    if remaining:
        translated["Transform"] = remaining
    else:
        translated.pop("Transform", None)
    return translated


def unsupported_resource_types(resources: Mapping[str, Any]) -> dict[str, str]:
    """Logical id → type of every resource moto's CloudFormation would not create."""
    supported = get_model_map()
    unsupported: dict[str, str] = {}
    for logical_id, resource in resources.items():
        resource_type = resource.get("Type", "")
        if resource_type.startswith(LOCALLY_SERVED_PREFIXES):
            unsupported[logical_id] = resource_type
            continue
        if resource_type in supported or resource_type in NULL_MODELS or resource_type.startswith("Custom::"):
            continue
        if resource_type == "AWS::CloudFormation::CustomResource":
            continue
        unsupported[logical_id] = resource_type
    return unsupported


class _ReferenceReplacer:
    """Rewrites Ref / GetAtt / Sub references to stripped resources into their stand-in ids."""

    def __init__(self, stand_ins: Mapping[str, str]) -> None:
        self.stand_ins = stand_ins
        if stand_ins:
            names = "|".join(re.escape(name) for name in sorted(stand_ins, key=len, reverse=True))
            self._sub_pattern: re.Pattern[str] | None = re.compile(
                r"\$\{(" + names + r")(\.[A-Za-z0-9.]+)?\}"
            )
        else:
            self._sub_pattern = None

    def _stand_in_attribute(self, logical_id: str, attribute: str) -> str:
        return f"{self.stand_ins[logical_id]}.{attribute}"

    def _replace_sub_text(self, text: str) -> str:
        if self._sub_pattern is None:
            return text

        def substitute(match: re.Match[str]) -> str:
            logical_id, attribute = match.group(1), match.group(2)
            if attribute:
                return self._stand_in_attribute(logical_id, attribute[1:])
            return self.stand_ins[logical_id]

        return self._sub_pattern.sub(substitute, text)

    def replace(self, node: Any) -> Any:
        """Return ``node`` with references to stripped resources replaced."""
        if isinstance(node, list):
            return [self.replace(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref" and isinstance(value, str) and value in self.stand_ins:
                return self.stand_ins[value]
            if key == "Fn::GetAtt":
                parts = value.split(".", 1) if isinstance(value, str) else value
                if isinstance(parts, list) and parts and parts[0] in self.stand_ins:
                    return self._stand_in_attribute(parts[0], ".".join(str(p) for p in parts[1:]))
            if key == "Fn::Sub":
                if isinstance(value, str):
                    return {"Fn::Sub": self._replace_sub_text(value)}
                if isinstance(value, list) and value:
                    return {"Fn::Sub": [self._replace_sub_text(value[0]), *self.replace(value[1:])]}
        return {key: self.replace(value) for key, value in node.items()}


def strip_unsupported(
    template: dict[str, Any], stack_name: str
) -> tuple[dict[str, Any], list[SkippedResource]]:
    """Remove resources moto cannot create, rewriting references to them; report each one."""
    stripped = copy.deepcopy(template)
    resources: dict[str, Any] = stripped.get("Resources", {})
    unsupported = unsupported_resource_types(resources)
    skipped = []
    for logical_id, resource_type in unsupported.items():
        definition = resources.pop(logical_id)
        skipped.append(
            SkippedResource(
                logical_id=logical_id,
                resource_type=resource_type,
                definition=definition,
                physical_id=_stand_in_for(stack_name, logical_id, resource_type, definition),
            )
        )
    replacer = _ReferenceReplacer({s.logical_id: s.physical_id for s in skipped})
    for logical_id, resource in list(resources.items()):
        depends_on = resource.get("DependsOn")
        if isinstance(depends_on, str) and depends_on in unsupported:
            resource.pop("DependsOn")
        elif isinstance(depends_on, list):
            resource["DependsOn"] = [name for name in depends_on if name not in unsupported]
        resources[logical_id] = replacer.replace(resource)
    for section in ("Outputs", "Conditions"):
        if section in stripped:
            stripped[section] = replacer.replace(stripped[section])
    for item in skipped:
        item.definition = replacer.replace(item.definition)
    return stripped, skipped


def _iter_stack_resources(cloudformation: Any, stack_name: str) -> Iterable[dict[str, Any]]:
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        yield from page["StackResourceSummaries"]


Resolver = Callable[[Any], Any]


@dataclass
class DeployContext:
    """What post-deploy steps may use: clients, the stack's name, and a resolver of intrinsics."""

    client: Callable[[str], Any]
    region: str
    stack_name: str
    resolve: Resolver


SkippedHandler = Callable[[SkippedResource, DeployContext], str | None]


def _as_is(node: Any) -> Any:
    return node


PostDeployStep = Callable[[DeployResult, DeployContext], None]


class Deployer:
    """Deploys templates into the local endpoint's CloudFormation."""

    def __init__(
        self,
        client: Callable[[str], Any],
        region: str,
        skipped_handlers: Mapping[str, SkippedHandler] | None = None,
        post_deploy: Iterable[PostDeployStep] = (),
        pre_deploy_handlers: Mapping[str, SkippedHandler] | None = None,
    ) -> None:
        self._client = client
        self.region = region
        self._skipped_handlers = dict(skipped_handlers or {})
        self._post_deploy = list(post_deploy)
        self._pre_deploy_handlers = dict(pre_deploy_handlers or {})

    def deploy(
        self, template_path: Path, stack_name: str, parameters: Mapping[str, str] | None = None
    ) -> DeployResult:
        """Create or update ``stack_name`` from the template file; wait until it is complete."""
        template_path = Path(template_path).resolve()
        parameters = dict(parameters or {})
        preparer = TemplatePreparer(stack_name, template_path.parent)
        prepared = preparer.prepare(load_template(template_path))
        translated = translate(prepared, parameters, self.region)
        deployable, skipped = strip_unsupported(translated, stack_name)
        self._upload_placeholders(preparer)
        # Some stripped resources must exist before the stack (secrets read by dynamic references).
        early = DeployContext(client=self._client, region=self.region, stack_name=stack_name, resolve=_as_is)
        for item in skipped:
            handler = self._pre_deploy_handlers.get(item.resource_type)
            if handler is not None:
                item.handled_by = handler(item, early)
        deployable = resolve_dynamic_references(deployable, self._client)

        updated = self._create_or_update(stack_name, deployable, parameters)
        stack = self._wait_for_stack(stack_name)
        status = stack["StackStatus"]
        cloudformation = self._client("cloudformation")
        if status.endswith("FAILED") or "ROLLBACK" in status:
            raise DeployError(f"stack {stack_name} ended in {status}: {stack.get('StackStatusReason', '')}")
        outputs = {o["OutputKey"]: str(o.get("OutputValue", "")) for o in stack.get("Outputs", [])}
        summaries = list(_iter_stack_resources(cloudformation, stack_name))
        resources = {s["LogicalResourceId"]: s.get("PhysicalResourceId", "") for s in summaries}
        functions = self._function_sources(summaries, preparer)

        resolve = self._stack_resolver(stack_name)
        self._resolve_skipped(resolve, skipped)
        context = DeployContext(
            client=self._client, region=self.region, stack_name=stack_name, resolve=resolve
        )
        for item in skipped:
            if item.handled_by is not None:
                continue
            handler = self._skipped_handlers.get(item.resource_type)
            if handler is None:
                LOG.info("nothing in localcloud serves %s (%s)", item.logical_id, item.resource_type)
                continue
            try:
                item.handled_by = handler(item, context)
            except Exception:
                LOG.exception("could not serve %s (%s) locally", item.logical_id, item.resource_type)
        result = DeployResult(
            stack_name=stack_name,
            stack_id=stack["StackId"],
            status=status,
            outputs=outputs,
            resources=resources,
            functions=functions,
            skipped=skipped,
            translated_template=translated,
            updated=updated,
        )
        for step in self._post_deploy:
            try:
                step(result, context)
            except Exception:
                LOG.exception("post-deploy step %s failed", getattr(step, "__name__", step))
        return result

    def _wait_for_stack(self, stack_name: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """The stack once no operation is in progress (moto finishes at once; AWS would not)."""
        cloudformation = self._client("cloudformation")
        deadline = time.monotonic() + timeout_s
        while True:
            stack: dict[str, Any] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
            if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
                return stack
            time.sleep(0.1)

    def _upload_placeholders(self, preparer: TemplatePreparer) -> None:
        if not preparer.code_dirs and not preparer.layer_dirs:
            return
        s3 = self._client("s3")
        try:
            s3.head_bucket(Bucket=CODE_BUCKET)
        except ClientError:
            s3.create_bucket(Bucket=CODE_BUCKET)
        for code_dir, key in preparer.code_dirs.values():
            s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=_placeholder_zip(code_dir, key))
        for content_dir, key, python_path in preparer.layer_dirs.values():
            s3.put_object(Bucket=CODE_BUCKET, Key=key, Body=_placeholder_zip(content_dir, key, python_path))

    def _stack_exists(self, stack_name: str) -> bool:
        cloudformation = self._client("cloudformation")
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
        except ClientError:
            return False
        return any(s["StackStatus"] not in ("DELETE_COMPLETE", "ROLLBACK_COMPLETE") for s in stacks)

    def _create_or_update(
        self, stack_name: str, template: dict[str, Any], parameters: dict[str, str]
    ) -> bool:
        cloudformation = self._client("cloudformation")
        declared = template.get("Parameters", {})
        stack_parameters = [
            {"ParameterKey": key, "ParameterValue": str(value)}
            for key, value in parameters.items()
            if key in declared
        ]
        request: dict[str, Any] = {
            "StackName": stack_name,
            "TemplateBody": json.dumps(template),
            "Parameters": stack_parameters,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
        }
        try:
            if self._stack_exists(stack_name):
                try:
                    cloudformation.update_stack(**request)
                except ClientError as exc:
                    if "No updates are to be performed" not in str(exc):
                        raise
                return True
            cloudformation.create_stack(**request)
        except ClientError as exc:
            raise DeployError(f"deploying {stack_name} failed: {exc}") from exc
        return False

    def _function_sources(
        self, summaries: Iterable[dict[str, Any]], preparer: TemplatePreparer
    ) -> dict[str, FunctionSource]:
        lambda_client = self._client("lambda")
        functions: dict[str, FunctionSource] = {}
        for summary in summaries:
            if summary["ResourceType"] != "AWS::Lambda::Function":
                continue
            logical_id = summary["LogicalResourceId"]
            name = summary["PhysicalResourceId"]
            arn = lambda_client.get_function_configuration(FunctionName=name)["FunctionArn"]
            code = preparer.code_dirs.get(logical_id)
            functions[name] = FunctionSource(
                logical_id=logical_id,
                function_name=name,
                function_arn=arn,
                code_dir=code[0] if code else None,
            )
        return functions

    def _stack_resolver(self, stack_name: str) -> Resolver:
        """Resolve Ref / GetAtt / Sub in a template fragment with moto's map of the deployed stack."""
        backend = cloudformation_backends[ACCOUNT_ID][self.region]
        stack = next(
            (s for s in backend.stacks.values() if s.name == stack_name and s.status != "DELETE_COMPLETE"),
            None,
        )

        def resolve(node: Any) -> Any:
            if stack is None:
                raise DeployError(f"stack {stack_name} is not deployed")
            return clean_json(copy.deepcopy(node), stack.resource_map)

        return resolve

    def _resolve_skipped(self, resolve: Resolver, skipped: list[SkippedResource]) -> None:
        for item in skipped:
            try:
                resolved = resolve(item.definition.get("Properties", {}))
            except Exception as exc:  # moto raises a variety of errors on what it cannot resolve
                LOG.debug("could not resolve %s: %s", item.logical_id, exc)
                continue
            item.resolved_properties = resolved if isinstance(resolved, dict) else None
