"""The local status page."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from alleycat.status import StatusServer


def test_the_status_page_links_back_to_the_dashboard() -> None:
    stack: Any = SimpleNamespace(cloud=None, stacks={"alleycat": SimpleNamespace(outputs={"ApiUrl": "x"})})
    page = StatusServer(stack).page()
    assert '<a href="/">&larr; dashboard</a>' in page
    assert "ApiUrl" in page
