"""The dashboard page server: stdlib HTTP on 127.0.0.1, one page, a small JSON API.

    GET  /                          the page (static/index.html; ?dashboard=NAME&start=-PT15M&period=10)
    GET  /static/<file>             its script and style sheet
    GET  /api/dashboards            {"dashboards": [names]}
    GET  /api/dashboards/<name>     {"name": ..., "body": {...}}
    POST /api/widget                {"properties": {...}, "start", "end", "period"} -> the widget's series

Other paths can be added with ``routes`` (e.g. a status page beside the dashboards).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from localcloud.dashboard.body import BodyError
from localcloud.dashboard.source import DashboardNotFoundError, MetricSource

LOG = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
MAX_REQUEST_BYTES = 1 << 20

# path -> () -> (body, content type)
Route = Callable[[], tuple[bytes, str]]


class DashboardServer:
    """Serves the dashboards of a :class:`MetricSource` as a live page."""

    def __init__(
        self,
        source: MetricSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        title: str = "Dashboards",
        routes: Mapping[str, Route] | None = None,
        links: Mapping[str, str] | None = None,
    ) -> None:
        """Bind now (port 0 picks a free one); serve after :meth:`start`.

        ``routes`` adds pages beside the dashboards; ``links`` (text -> URL) go in the page header.
        """
        self.source = source
        self.title = title
        self._routes = dict(routes or {})
        self._links = dict(links or {})
        self._httpd = ThreadingHTTPServer((host, port), _handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> DashboardServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="dashboard-page", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from the handler's threads) ----------------------------------------
    def get(self, path: str) -> tuple[int, bytes, str]:
        """Answer a GET: status, body, content type."""
        if path in self._routes:
            body, kind = self._routes[path]()
            return 200, body, kind
        if path in ("/", "/index.html"):
            links = "".join(f'<a href="{_escape(u)}">{_escape(t)}</a>' for t, u in self._links.items())
            page = (STATIC / "index.html").read_text().replace("{{title}}", _escape(self.title))
            page = page.replace("{{links}}", links)
            return 200, page.encode(), _TYPES[".html"]
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            file = STATIC / name
            if "/" in name or file.suffix not in _TYPES or not file.is_file():
                return _json(404, {"message": f"no such file: {name}"})
            return 200, file.read_bytes(), _TYPES[file.suffix]
        if path == "/api/dashboards":
            return _json(200, {"dashboards": self.source.dashboards(), "title": self.title})
        if path.startswith("/api/dashboards/"):
            name = unquote(path.removeprefix("/api/dashboards/"))
            return _json(200, {"name": name, "body": self.source.dashboard(name)})
        return _json(404, {"message": f"no such page: {path}"})

    def post(self, path: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        """Answer a POST with a JSON body."""
        if path != "/api/widget":
            return _json(404, {"message": f"no such endpoint: {path}"})
        properties = request.get("properties")
        if not isinstance(properties, dict):
            return _json(400, {"message": "properties: the widget's properties object is required"})
        period = request.get("period")
        data = self.source.widget_data(
            properties,
            start=request.get("start") or None,
            end=request.get("end") or None,
            period=int(period) if period else None,
        )
        return _json(200, data)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _json(status: int, content: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(content, default=str).encode(), "application/json"


def _handler(server: DashboardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(lambda: server.get(urlsplit(self.path).path))

        def do_POST(self) -> None:
            def answer() -> tuple[int, bytes, str]:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BYTES:
                    return _json(413, {"message": "request too large"})
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return _json(400, {"message": "the body is not JSON"})
                if not isinstance(request, dict):
                    return _json(400, {"message": "the body is a JSON object"})
                return server.post(urlsplit(self.path).path, request)

            self._answer(answer)

        def _answer(self, produce: Callable[[], tuple[int, bytes, str]]) -> None:
            try:
                status, body, kind = produce()
            except DashboardNotFoundError as exc:
                status, body, kind = _json(404, {"message": f"no dashboard named {exc}"})
            except (BodyError, ValueError, TypeError, KeyError) as exc:
                status, body, kind = _json(400, {"message": f"{type(exc).__name__}: {exc}"})
            except Exception as exc:  # CloudWatch unreachable, credentials expired: say so on the page
                LOG.warning("dashboard request %s failed: %s", self.path, exc)
                status, body, kind = _json(502, {"message": f"CloudWatch: {exc}"})
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # quiet: the page polls every few seconds

    return Handler


__all__ = ["STATIC", "DashboardServer", "Route"]
