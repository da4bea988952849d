"""A small client of the leaderboard API (the same HTTP the CLI's users would call)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ApiError(RuntimeError):
    """The API answered with an error, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LeaderboardApi:
    """GETs on the leaderboard API at ``base_url``."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        """Talk to ``base_url`` (the stack's ApiUrl)."""
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def url(self, path: str, **query: Any) -> str:
        """The full URL of ``path`` with the non-empty query parameters."""
        params = {k: v for k, v in query.items() if v is not None}
        suffix = "?" + urllib.parse.urlencode(params) if params else ""
        return f"{self.base_url}{path}{suffix}"

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        """GET ``path`` and decode the JSON body; raises :class:`ApiError` on a non-2xx answer."""
        url = self.url(path, **query)
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:
                body: dict[str, Any] = json.loads(response.read() or b"{}")
                return body
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("message", exc.reason)
            except ValueError:
                message = exc.reason
            raise ApiError(f"{exc.code} from {url}: {message}", exc.code) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise ApiError(f"cannot reach {url}: {exc}") from exc

    def leaderboard(self, race_id: int, limit: int = 10) -> dict[str, Any]:
        """A race's leaderboard, first page."""
        return self.get(f"/races/{race_id}/leaderboard", limit=limit)

    def races(self, class_id: int | None = None, limit: int = 20) -> dict[str, Any]:
        """Races, newest first."""
        return self.get("/races", classId=class_id, limit=limit)

    def class_board(self, class_id: int, limit: int = 10) -> dict[str, Any]:
        """All-time personal bests of a class."""
        return self.get(f"/classes/{class_id}/leaderboard", limit=limit)
