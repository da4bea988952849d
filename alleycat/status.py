"""A small status page for the local stack: URLs, stack outputs and the mapping engine's figures.

Served at ``dashboard_url``; ``/status.json`` has the same data for scripts.
"""

from __future__ import annotations

import dataclasses
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alleycat.ports import RunningStack


class StatusServer:
    """Serves the status page of a :class:`LocalStack` on 127.0.0.1."""

    def __init__(self, stack: RunningStack, host: str = "127.0.0.1", port: int = 0) -> None:
        """Bind now (port 0 picks a free one); serve after :meth:`start`."""
        self._stack = stack
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/status.json":
                    body = json.dumps(server.snapshot(), indent=2, default=str).encode()
                    kind = "application/json"
                elif self.path.split("?")[0] == "/":
                    body, kind = server.page().encode(), "text/html; charset=utf-8"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the page refreshes itself every few seconds

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="status-page", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

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
<body><h1>Alleycat · local stack</h1>
<h2>Event source mappings</h2><table><tr><th>function</th><th>shard</th><th>records</th><th>batches</th>
<th>errors</th><th>retries</th><th>iterator age (ms)</th></tr>{rows}</table>
<h2>Stacks</h2>{outputs}<p><a href="/status.json">status.json</a></p></body></html>"""
