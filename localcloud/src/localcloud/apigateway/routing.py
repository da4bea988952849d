"""Choosing the route a request goes to, the way API Gateway does.

A path segment matches a literal resource before a ``{parameter}``, and a ``{parameter}`` before a
greedy ``{proxy+}`` (which needs at least one segment). REST APIs first pick the most specific
resource and then its method (the exact method, else ``ANY``); a resource without the method is no
route at all. HTTP APIs pick the most specific route whose method matches, then ``$default``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from localcloud.apigateway.model import ANY_METHOD, DEFAULT_ROUTE, ApiKind, Route

_LITERAL, _PARAMETER, _GREEDY = 2, 1, 0


@dataclass(frozen=True)
class RouteMatch:
    """The chosen route and the path parameters taken from the request path."""

    route: Route
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class _Segment:
    kind: int
    text: str  # the literal, or the parameter's name


class _PathTemplate:
    """A compiled resource path such as ``/races/{raceId}/{proxy+}``."""

    def __init__(self, path: str) -> None:
        self.segments: list[_Segment] = []
        for part in _split(path):
            if part.startswith("{") and part.endswith("+}"):
                self.segments.append(_Segment(_GREEDY, part[1:-2]))
            elif part.startswith("{") and part.endswith("}"):
                self.segments.append(_Segment(_PARAMETER, part[1:-1]))
            else:
                self.segments.append(_Segment(_LITERAL, part))

    def match(self, parts: list[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """The match's specificity (higher is more specific) and its parameters, or None."""
        parameters: dict[str, str] = {}
        score: list[int] = []
        for index, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                rest = parts[index:]
                if not rest or index != len(self.segments) - 1:
                    return None
                parameters[segment.text] = "/".join(unquote(part) for part in rest)
                score.append(_GREEDY)
                return tuple(score), parameters
            if index >= len(parts):
                return None
            if segment.kind == _LITERAL:
                if unquote(parts[index]) != segment.text:
                    return None
            else:
                if parts[index] == "":
                    return None
                parameters[segment.text] = unquote(parts[index])
            score.append(segment.kind)
        if len(parts) != len(self.segments):
            return None
        # A full literal/parameter match beats a greedy one of the same prefix: pad with a top score.
        return (*score, _LITERAL + 1), parameters


def _split(path: str) -> list[str]:
    # "/" and "" are the root; a trailing slash does not make another resource.
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


class RouteTable:
    """The routes of one API, matched by method and path."""

    def __init__(self, routes: tuple[Route, ...] | list[Route], kind: ApiKind) -> None:
        self.kind = kind
        self._templates = [
            (route, _PathTemplate(route.path)) for route in routes if route.path != DEFAULT_ROUTE
        ]
        self._default = next((route for route in routes if route.path == DEFAULT_ROUTE), None)

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The route for ``method`` on ``path`` (the path after the stage), or None (no route)."""
        method = method.upper()
        parts = _split(path)
        if self.kind is ApiKind.REST:
            return self._match_rest(method, parts)
        return self._match_http(method, parts)

    def _match_rest(self, method: str, parts: list[str]) -> RouteMatch | None:
        best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
        for route, template in self._templates:
            found = template.match(parts)
            if found is not None and (best is None or found[0] > best[0]):
                best = (found[0], route.path, found[1])
        if best is None:
            return None
        _, resource, parameters = best
        methods = {route.method: route for route, _ in self._templates if route.path == resource}
        chosen = methods.get(method) or methods.get(ANY_METHOD)
        return RouteMatch(chosen, parameters) if chosen is not None else None

    def _match_http(self, method: str, parts: list[str]) -> RouteMatch | None:
        best: tuple[tuple[tuple[int, ...], bool], Route, dict[str, str]] | None = None
        for route, template in self._templates:
            if route.method not in (method, ANY_METHOD):
                continue
            found = template.match(parts)
            if found is None:
                continue
            rank = (found[0], route.method == method)
            if best is None or rank > best[0]:
                best = (rank, route, found[1])
        if best is not None:
            return RouteMatch(best[1], best[2])
        if self._default is not None:
            return RouteMatch(self._default, {})
        return None

    def has_path(self, path: str) -> bool:
        """True when some route's resource path matches ``path`` (whatever its method)."""
        parts = _split(path)
        return any(template.match(parts) is not None for _, template in self._templates)
