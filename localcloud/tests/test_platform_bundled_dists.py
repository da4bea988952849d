"""Functions whose folder bundles distributions, as `sam build` artifacts do.

A bundle built for this machine is used as it is (as on Lambda). A bundle built for another
platform or Python (arm64 / python3.12 wheels on an x86_64 / 3.11 machine) cannot load its native
modules here, so the worker takes the bundled distributions from its own environment and only the
function's own modules from the folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud import LocalCloud

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  ForeignBundle:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: foreign, Handler: app.handler, Runtime: python3.12}
  NativeBundle:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: native, Handler: app.handler, Runtime: python3.12}
"""
HANDLER = """\
import boto3

MARKER = "function code from the folder"


def handler(event, context):
    return {"boto3": boto3.__file__, "bundled": getattr(boto3, "BUNDLED", False), "marker": MARKER}
"""
# Neither Python 2.7 nor 32-bit Windows runs these tests: a tag that is foreign wherever they run.
FOREIGN_TAG = "cp27-cp27mu-win32"


def _bundle(folder: Path, tag: str) -> None:
    """A code folder with the handler and a stand-in boto3 distribution wheel-tagged ``tag``."""
    (folder / "boto3").mkdir(parents=True)
    (folder / "boto3" / "__init__.py").write_text("BUNDLED = True\n")
    dist_info = folder / "boto3-0.0.0.dist-info"
    dist_info.mkdir()
    (dist_info / "WHEEL").write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n")
    (dist_info / "RECORD").write_text(
        "boto3/__init__.py,,\nboto3-0.0.0.dist-info/WHEEL,,\nboto3-0.0.0.dist-info/RECORD,,\n"
    )
    (folder / "app.py").write_text(HANDLER)


@pytest.fixture(scope="module")
def functions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCloud, dict[str, str]]]:
    project = tmp_path_factory.mktemp("bundles")
    _bundle(project / "foreign", FOREIGN_TAG)
    _bundle(project / "native", "py3-none-any")
    (project / "template.yaml").write_text(TEMPLATE)
    with LocalCloud(state_dir=tmp_path_factory.mktemp("bundles-state")) as cloud:
        result = cloud.deploy(project / "template.yaml", "bundles")
        yield cloud, {source.logical_id: name for name, source in result.functions.items()}


def test_a_foreign_bundle_comes_from_the_environment(functions):
    cloud, names = functions

    result = cloud.invoke(names["ForeignBundle"], {})

    assert result.ok, result
    assert result.payload["marker"] == "function code from the folder"
    assert result.payload["bundled"] is False
    assert "foreign" not in Path(result.payload["boto3"]).parts


def test_a_bundle_built_for_this_machine_is_used_as_it_is(functions):
    cloud, names = functions

    result = cloud.invoke(names["NativeBundle"], {})

    assert result.ok, result
    assert result.payload["bundled"] is True
    assert "native" in Path(result.payload["boto3"]).parts
