"""What the local stack's pages need from it, as protocols: the stack, the status page, the dashboard.

``alleycat.stack`` builds the status page and the dashboard page; they only read a few things from
the stack and from each other. Naming those things here (a module that imports none of the three)
keeps the imports one-way: stack → status, stack → dashboard.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class DeployedOutputs(Protocol):
    """A deployed stack, as far as the status page shows it."""

    @property
    def outputs(self) -> Mapping[str, str]:
        """The stack's outputs (local URLs where the stack serves an API)."""
        ...


class LocalServices(Protocol):
    """The local cloud under the stack, as far as the status page reads it."""

    @property
    def mapping_engine(self) -> Any:
        """The event source mapping engine (``stats()`` per mapping and shard), or None."""
        ...


class RunningStack(Protocol):
    """A running local stack, as the status page reads it."""

    @property
    def cloud(self) -> LocalServices | None:
        """The local cloud, None before start and after stop."""
        ...

    @property
    def stacks(self) -> Mapping[str, DeployedOutputs]:
        """The deployed stacks by name."""
        ...


class StatusPages(Protocol):
    """The status page's content, which the dashboard page serves beside the dashboards."""

    def page(self) -> str:
        """The HTML page."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The same data as JSON-ready values."""
        ...
