"""Velocity (VTL) mapping templates as API Gateway renders them, with ``$input``, ``$util``, ``$context``.

The template language itself is LocalStack's ``airspeed`` (the ``airspeed-ext`` distribution), kept
at parity with AWS's VTL; this module only supplies API Gateway's variables:

* ``$input``: ``.body``, ``.json(path)`` (JSON text), ``.path(path)`` (an object to navigate),
  ``.params()`` (``{"path", "querystring", "header"}``) and ``.params(name)`` (looked up in that order).
  Paths are JSONPath (``jsonpath-ng``), e.g. ``$.Items`` or ``$['name']``.
* ``$util``: ``escapeJavaScript``, ``parseJson``, ``urlEncode``, ``urlDecode``, ``base64Encode``,
  ``base64Decode``.
* ``$context``: the request's context (``requestId``, ``stage``, ``resourcePath``, ``httpMethod``,
  ``identity.sourceIp``, ...), and ``responseOverride.status`` / ``responseOverride.header.<name>``,
  which a response template may set to change the method response.
* ``$stageVariables``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import airspeed
from jsonpath_ng.ext.parser import parse as parse_jsonpath


class MappingTemplateError(Exception):
    """A mapping template that does not parse or render (API Gateway answers 500)."""


class InputVariable:
    """``$input``: the payload being mapped and the method request's parameters."""

    def __init__(self, body: str, params: dict[str, dict[str, str]]) -> None:
        self.body = body
        self._params = params
        self._parsed: Any = None
        self._parsed_done = False

    def _document(self) -> Any:
        if not self._parsed_done:
            self._parsed_done = True
            try:
                self._parsed = json.loads(self.body) if self.body.strip() else {}
            except ValueError:
                # A non-JSON payload: JSONPath sees the text itself.
                self._parsed = self.body
        return self._parsed

    def path(self, expression: str = "$") -> Any:
        """The value at a JSONPath as an object (one match), a list (several) or None."""
        document = self._document()
        if expression.strip() == "$":
            return document
        try:
            matches = [found.value for found in parse_jsonpath(expression).find(document)]
        except Exception as exc:  # jsonpath-ng raises plain Exceptions for syntax errors
            raise MappingTemplateError(f"bad JSONPath {expression!r}: {exc}") from exc
        if not matches:
            return None
        return matches[0] if len(matches) == 1 else matches

    def json(self, expression: str = "$") -> str:
        """The value at a JSONPath as JSON text."""
        return json.dumps(self.path(expression), separators=(",", ":"))

    def params(self, name: str | None = None) -> Any:
        """All parameters by location, or one parameter from the path, query string or headers."""
        if name is None:
            return self._params
        for location in ("path", "querystring", "header"):
            values = self._params.get(location, {})
            if location == "header":
                lowered = {key.lower(): value for key, value in values.items()}
                if name.lower() in lowered:
                    return lowered[name.lower()]
            elif name in values:
                return values[name]
        return ""


class UtilVariable:
    """``$util``: API Gateway's helper functions."""

    def escapeJavaScript(self, text: Any) -> str:  # noqa: N802 - API Gateway's name
        """Escape for a JavaScript string; like AWS, single quotes become ``\\'`` too."""
        return json.dumps(str(text))[1:-1].replace("'", "\\'")

    def parseJson(self, text: str) -> Any:  # noqa: N802
        """Parse JSON text into an object the template can navigate."""
        try:
            return json.loads(text)
        except ValueError as exc:
            raise MappingTemplateError(f"$util.parseJson: {exc}") from exc

    def urlEncode(self, text: Any) -> str:  # noqa: N802
        """application/x-www-form-urlencoded encoding."""
        return quote_plus(str(text))

    def urlDecode(self, text: Any) -> str:  # noqa: N802
        """The inverse of urlEncode."""
        return unquote_plus(str(text))

    def base64Encode(self, text: Any) -> str:  # noqa: N802
        """Base64 of the text's UTF-8 bytes."""
        return base64.b64encode(str(text).encode("utf-8")).decode("ascii")

    def base64Decode(self, text: Any) -> str:  # noqa: N802
        """The text whose UTF-8 bytes are this Base64."""
        return base64.b64decode(str(text)).decode("utf-8", errors="replace")


@dataclass
class ResponseOverride:
    """What a response template asked for through ``$context.responseOverride``."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


_UTIL = UtilVariable()


def render(
    template: str,
    *,
    body: str,
    params: dict[str, dict[str, str]],
    context: dict[str, Any],
    stage_variables: dict[str, str] | None = None,
) -> tuple[str, ResponseOverride]:
    """Render one mapping template; returns the output and any ``responseOverride``."""
    context = dict(context)
    override: dict[str, Any] = {"status": None, "header": {}}
    context["responseOverride"] = override
    namespace = {
        "input": InputVariable(body, params),
        "util": _UTIL,
        "context": context,
        "stageVariables": dict(stage_variables or {}),
    }
    try:
        output = str(airspeed.Template(template).merge(namespace))
    except MappingTemplateError:
        raise
    except Exception as exc:  # airspeed's TemplateSyntaxError / TemplateExecutionError and friends
        raise MappingTemplateError(f"{type(exc).__name__}: {exc}") from exc
    status = override.get("status")
    headers = override.get("header") or {}
    return output, ResponseOverride(
        status=int(status) if status not in (None, "") else None,
        headers={str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {},
    )
