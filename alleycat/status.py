"""A small status page for the local stack: URLs, stack outputs and the mapping engine's figures.

Served at ``dashboard_url``; ``/status.json`` has the same data for scripts.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from localcloud.httpserver import HttpServer, StartResponse, respond

if TYPE_CHECKING:
    from alleycat.ports import RunningStack


class StatusServer:
    """Serves the status page of a :class:`LocalStack` on 127.0.0.1."""

    def __init__(self, stack: RunningStack, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind now (port 0 picks a free one); serve after :meth:`start`."""
        self._stack = stack
        self._http = HttpServer(self.wsgi_app, host=host, port=port, name="status-page")
        self._http.bind()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"{self._http.url}/"

    def start(self) -> None:
        """Serve in a background thread."""
        self._http.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._http.stop()

    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """``/`` (the page) and ``/status.json``; the page refreshes itself every few seconds."""
        path = environ.get("PATH_INFO", "/")
        if path == "/status.json":
            body = json.dumps(self.snapshot(), indent=2, default=str).encode()
            kind = "application/json"
        elif path == "/":
            body, kind = self.page().encode(), "text/html; charset=utf-8"
        else:
            return respond(start_response, 404, [("Content-Type", "text/plain")], b"Not Found")
        return respond(start_response, 200, [("Content-Type", kind), ("Cache-Control", "no-store")], body)

    def snapshot(self) -> dict[str, Any]:
        """Stacks, URLs and per-mapping-and-shard figures."""
        stack = self._stack
        mappings: list[dict[str, Any]] = []
        engine = stack.cloud.mapping_engine if stack.cloud else None
        if engine is not None:
            mappings = [dataclasses.asdict(s) for s in engine.stats()]
        return {
            "stacks": {name: s.outputs for name, s in stack.stacks.items()},
            "mappings": mappings,
        }

    def page(self) -> str:
        """The HTML page (refreshes every 3 s)."""
        data = self.snapshot()
        rows = "".join(
            f"<tr><td>{html.escape(str(m['function_arn']).rsplit(':', 1)[-1])}</td>"
            f"<td>{html.escape(str(m['shard_id']))}</td><td>{m['records']:,}</td><td>{m['batches']:,}</td>"
            f"<td>{m['errors']:,}</td><td>{m['retries']:,}</td><td>{m['iterator_age_ms']:,}</td></tr>"
            for m in data["mappings"]
        )
        outputs = "".join(
            f"<h3>{html.escape(name)}</h3><table>"
            + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in out.items())
            + "</table>"
            for name, out in data["stacks"].items()
        )
        return f"""<!doctype html><html><head><meta charset="utf-8"><title>Alleycat - local stack</title>
<meta http-equiv="refresh" content="3">
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}th{{background:#f4f4f8}}</style></head>
<body><p><a href="/">&larr; dashboard</a></p><h1>Alleycat · local stack</h1>
<h2>Event source mappings</h2><table><tr><th>function</th><th>shard</th><th>records</th><th>batches</th>
<th>errors</th><th>retries</th><th>iterator age (ms)</th></tr>{rows}</table>
<h2>Stacks</h2>{outputs}<p><a href="/status.json">status.json</a></p></body></html>"""
