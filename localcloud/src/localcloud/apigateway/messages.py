"""The HTTP request and response as the front door sees them, independent of the HTTP server."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl


@dataclass(frozen=True)
class GatewayRequest:
    """One request to an API, with the path as it would arrive at the API's own host.

    ``path`` is raw (still percent-encoded) and starts with the stage for a named stage, e.g.
    ``/v1/races/42``; ``headers`` keep the client's order, spelling and repeats.
    """

    method: str
    path: str
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"
    host: str = "localhost"

    def header(self, name: str) -> str | None:
        """The last value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == lowered:
                found = value
        return found

    def query_pairs(self) -> list[tuple[str, str]]:
        """The decoded query string parameters in order, repeats included."""
        return parse_qsl(self.query, keep_blank_values=True)


@dataclass
class GatewayResponse:
    """What goes back to the client."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def set_default_header(self, name: str, value: str) -> None:
        """Add the header unless the response already has one by that name."""
        if self.header(name) is None:
            self.headers.append((name, value))

    @classmethod
    def json_message(
        cls, status: int, message: str, *, spaced: bool = False, error_type: str = ""
    ) -> GatewayResponse:
        """API Gateway's own ``{"message": ...}`` error body."""
        separators = (", ", ": ") if spaced else (",", ":")
        body = json.dumps({"message": message}, separators=separators).encode()
        headers = [("Content-Type", "application/json")]
        if error_type:
            headers.append(("x-amzn-ErrorType", error_type))
        return cls(status=status, headers=headers, body=body)
