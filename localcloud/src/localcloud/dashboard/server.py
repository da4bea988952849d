"""The dashboard page server: localcloud's HTTP server on 127.0.0.1, one page, a small JSON API.

    GET  /                          the page (static/index.html; ?dashboard=NAME&start=-PT15M&period=10)
    GET  /static/<file>             its script and style sheet
    GET  /api/dashboards            {"dashboards": [names]}
    GET  /api/dashboards/<name>     {"name": ..., "body": {...}}
    POST /api/widget                {"properties": {...}, "start", "end", "period"} -> the widget's series

``/api/widget`` answers only for widgets of the dashboards this server has handed out: it queries
CloudWatch with whatever credentials the process has (a user's real AWS account with ``--stack-name``),
so it must not be a general GetMetricData proxy for whoever can reach the port. (localcloud's HTTP
server already refuses foreign Hosts and cross-site writes; this is the second fence.)

Other paths can be added with ``routes`` (e.g. a status page beside the dashboards).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from localcloud.dashboard.body import BodyError
from localcloud.dashboard.source import DashboardNotFoundError, MetricSource
from localcloud.httpserver import HttpServer, StartResponse, request_target, respond

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
        default_start: str | None = None,
        default_period: int | None = None,
    ) -> None:
        """Bind now (port 0 picks a free one); serve after :meth:`start`.

        ``routes`` adds pages beside the dashboards; ``links`` (text -> URL) go in the page header.
        ``default_start`` (e.g. ``-PT10M``) and ``default_period`` (seconds) are the page's range and
        period when its URL names none; without them, the dashboard body's ``start`` (else one hour)
        and each widget's own period.
        """
        self.source = source
        self.title = title
        self.default_start = default_start
        self.default_period = default_period
        self._routes = dict(routes or {})
        self._links = dict(links or {})
        # Canonical JSON of every widget's properties in the dashboard bodies served so far.
        self._served_widgets: set[str] = set()
        self._served_lock = threading.Lock()
        self._http = HttpServer(self.wsgi_app, host=host, port=port, name="dashboard-page")
        self._http.bind()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>/``."""
        return f"{self._http.url}/"

    def start(self) -> DashboardServer:
        """Serve in a background thread."""
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._http.stop()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- request handling (called from the server's threads) -----------------------------------------
    def wsgi_app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The page and its API as a WSGI app."""
        # Still percent-encoded: get() decodes a dashboard's name itself.
        path = urlsplit(request_target(environ)).path
        method = environ["REQUEST_METHOD"]
        try:
            if method in ("GET", "HEAD"):
                status, body, kind = self.get(path)
            elif method == "POST":
                status, body, kind = self._post_request(path, environ)
            else:
                status, body, kind = _json(405, {"message": f"{method} is not served"})
        except DashboardNotFoundError as exc:
            status, body, kind = _json(404, {"message": f"no dashboard named {exc}"})
        except (BodyError, ValueError, TypeError, KeyError) as exc:
            status, body, kind = _json(400, {"message": f"{type(exc).__name__}: {exc}"})
        except Exception as exc:  # CloudWatch unreachable, credentials expired: say so on the page
            LOG.warning("dashboard request %s failed: %s", path, exc)
            status, body, kind = _json(502, {"message": f"CloudWatch: {exc}"})
        return respond(start_response, status, [("Content-Type", kind), ("Cache-Control", "no-store")], body)

    def _post_request(self, path: str, environ: dict[str, Any]) -> tuple[int, bytes, str]:
        declared = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(MAX_REQUEST_BYTES + 1)
        if declared > MAX_REQUEST_BYTES or len(raw) > MAX_REQUEST_BYTES:
            return _json(413, {"message": "request too large"})
        try:
            request = json.loads(raw or b"{}")
        except ValueError:
            return _json(400, {"message": "the body is not JSON"})
        if not isinstance(request, dict):
            return _json(400, {"message": "the body is a JSON object"})
        return self.post(path, request)

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
            defaults = {"start": self.default_start, "period": self.default_period}
            return _json(
                200, {"dashboards": self.source.dashboards(), "title": self.title, "defaults": defaults}
            )
        if path.startswith("/api/dashboards/"):
            name = unquote(path.removeprefix("/api/dashboards/"))
            served = self.source.dashboard(name)
            self._remember_widgets(served)
            return _json(200, {"name": name, "body": served})
        return _json(404, {"message": f"no such page: {path}"})

    def post(self, path: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        """Answer a POST with a JSON body."""
        if path != "/api/widget":
            return _json(404, {"message": f"no such endpoint: {path}"})
        properties = request.get("properties")
        if not isinstance(properties, dict):
            return _json(400, {"message": "properties: the widget's properties object is required"})
        with self._served_lock:
            known = _canonical(properties) in self._served_widgets
        if not known:
            return _json(403, {"message": "not a widget of a dashboard this page serves"})
        period = request.get("period")
        data = self.source.widget_data(
            properties,
            start=request.get("start") or None,
            end=request.get("end") or None,
            period=int(period) if period else None,
        )
        return _json(200, data)

    def _remember_widgets(self, body: dict[str, Any]) -> None:
        widgets = body.get("widgets")
        found = {
            _canonical(widget["properties"])
            for widget in (widgets if isinstance(widgets, list) else [])
            if isinstance(widget, dict) and isinstance(widget.get("properties"), dict)
        }
        with self._served_lock:
            self._served_widgets |= found


def _canonical(properties: dict[str, Any]) -> str:
    """One spelling per properties object, whatever order the page sent its keys in."""
    return json.dumps(properties, sort_keys=True, separators=(",", ":"), default=str)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _json(status: int, content: Any) -> tuple[int, bytes, str]:
    return status, json.dumps(content, default=str).encode(), "application/json"


__all__ = ["STATIC", "DashboardServer", "Route"]
