"""Reading CloudFormation / SAM templates, including YAML short-form intrinsic tags (!Ref, !Sub ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# Typed loosely so the module checks the same with or without PyYAML's type stubs.
_SafeLoader: Any = yaml.SafeLoader


class TemplateLoader(_SafeLoader):  # type: ignore[misc,unused-ignore]
    """A SafeLoader that turns ``!Ref x`` into ``{"Ref": "x"}`` and ``!Sub s`` into ``{"Fn::Sub": s}``."""


def _construct_intrinsic(loader: Any, tag_suffix: str, node: Any) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short form writes "Resource.Attribute"; only the first dot separates the two.
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {f"Fn::{tag_suffix}": value}


def _construct_timestamp_as_text(loader: Any, node: Any) -> Any:
    # CloudFormation treats an unquoted 2010-09-09 as text, not as a date.
    return loader.construct_scalar(node)


TemplateLoader.add_multi_constructor("!", _construct_intrinsic)
TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp_as_text)


def load_template(path: Path) -> dict[str, Any]:
    """Parse a JSON or YAML template file into plain dicts and lists."""
    text = path.read_text(encoding="utf-8")
    return parse_template(text)


def parse_template(text: str) -> dict[str, Any]:
    """Parse template text (JSON or YAML with CloudFormation tags)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        document: Any = json.loads(text)
    else:
        document = yaml.load(text, Loader=TemplateLoader)
    if not isinstance(document, dict):
        raise ValueError("a template must be a mapping at the top level")
    return document
