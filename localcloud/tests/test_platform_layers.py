"""Layers: a function imports from its layers' folders, put on sys.path after its own code."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud import LocalCloud

TEMPLATE = Path(__file__).parent / "templates" / "platform_layers" / "template.yaml"

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def cloud() -> Iterator[LocalCloud]:
    with LocalCloud(metrics=False, api_gateway=False, iot=False) as local:
        yield local


def test_a_function_imports_from_both_kinds_of_layer(cloud: LocalCloud) -> None:
    # Given a function with a SAM layer (BuildMethod python3.12) and a plain layer (python/ inside)
    outputs = cloud.deploy(TEMPLATE, "layers").outputs

    # When it is invoked
    answer = cloud.invoke(outputs["FunctionName"], {})

    # Then both layer modules import, from the folders Lambda would put under /opt/python
    assert answer.ok, answer.payload
    assert answer.payload["built"] == "built layer"
    assert answer.payload["plain"] == "plain layer"
    layers = TEMPLATE.parent
    assert Path(answer.payload["built_file"]).parent == layers / "built"
    path = [Path(entry) for entry in answer.payload["sys_path"]]
    # The function's own folder comes before its layers, and the layers keep their order.
    assert path.index(layers / "fn") < path.index(layers / "built") < path.index(layers / "plain" / "python")


def test_layer_versions_are_published_in_lambda(cloud: LocalCloud) -> None:
    # Given the deployed stack, when Lambda's API lists the function's configuration
    name = cloud.deploy(TEMPLATE, "layers").outputs["FunctionName"]
    layers = cloud.client("lambda").get_function_configuration(FunctionName=name)["Layers"]

    # Then both layer versions are attached, in template order
    assert len(layers) == 2
    assert all(":layer:" in layer["Arn"] for layer in layers)
