"""API Gateway's mapping template variables ($input, $util, $context) rendered by the VTL engine."""

from __future__ import annotations

import json

import pytest
from localcloud.apigateway.mapping import MappingTemplateError, render

PARAMS = {"path": {"name": "cat.png"}, "querystring": {"limit": "5"}, "header": {"Content-Type": "image/png"}}


def _render(template: str, body: str = "{}") -> str:
    output, _ = render(template, body=body, params=PARAMS, context={"requestId": "r-1", "stage": "v1"})
    return output


def test_input_json_path_and_params():
    body = json.dumps({"a": {"b": [1, 2]}, "s": "x"})
    assert _render("$input.json('$.a')", body) == '{"b":[1,2]}'
    assert _render("$input.path('$.a.b').size()", body) == "2"
    assert _render("$input.path('$.s')", body) == "x"
    assert _render("$input.params('name') $input.params('limit') $input.params('content-type')") == (
        "cat.png 5 image/png"
    )
    assert _render("$input.params().path.name") == "cat.png"
    assert _render("$input.body", body) == body


def test_util_functions_behave_as_on_aws():
    # escapeJavaScript also escapes single quotes, as AWS's does
    assert _render("$util.escapeJavaScript($input.path('$.s'))", json.dumps({"s": 'say "it\'s"'})) == (
        'say \\"it\\\'s\\"'
    )
    assert _render("$util.base64Encode('hi')") == "aGk="
    assert _render("$util.base64Decode('aGk=')") == "hi"
    assert _render("$util.urlEncode('a b&c')") == "a+b%26c"
    assert _render("$util.urlDecode('a+b%26c')") == "a b&c"
    assert _render("""$util.parseJson('{"k": 3}').k""") == "3"


def test_context_and_response_override():
    output, override = render(
        '#set($context.responseOverride.status = 404)#set($context.responseOverride.header.X-Why = "gone")'
        "$context.requestId/$context.stage",
        body="",
        params=PARAMS,
        context={"requestId": "r-1", "stage": "v1"},
    )
    assert output == "r-1/v1"
    assert override.status == 404
    assert override.headers == {"X-Why": "gone"}


def test_a_broken_template_is_a_mapping_error():
    with pytest.raises(MappingTemplateError):
        _render("#if($x")
