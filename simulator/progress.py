"""A rich live panel for the simulator's own command line (other front ends draw their own)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulator.runner import RunnerStats, RunSummary


def _clock_text(seconds: int) -> str:
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def render_stats(stats: RunnerStats) -> Table:
    """The progress table for one snapshot."""
    table = Table(title="Alleycat race simulator", show_header=False, min_width=48)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("race clock", f"{_clock_text(stats.race_second)} / {_clock_text(stats.duration)}")
    table.add_row("races", str(stats.races))
    table.add_row("messages", f"{stats.messages_generated:,} / {stats.messages_total:,}")
    table.add_row("sent", f"{stats.sent:,}")
    table.add_row("msgs/s", f"{stats.messages_per_second:,.0f}")
    table.add_row("retries", f"{stats.retried:,}")
    failures = ", ".join(f"{code}: {n:,}" for code, n in sorted(stats.failures_by_code.items()))
    table.add_row("failures", f"[red]{stats.failed:,}[/] {failures}" if stats.failed else "0")
    return table


class RichProgress:
    """A progress callback that redraws a live table; use as a context manager around the run."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(stderr=True)
        self._live = Live(console=self._console, refresh_per_second=4, transient=False)

    def __enter__(self) -> Self:
        self._live.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def __call__(self, stats: RunnerStats) -> None:
        """Show ``stats``."""
        self._live.update(render_stats(stats), refresh=stats.finished)


def render_summary(summary: RunSummary) -> Table:
    """The end-of-run summary table."""
    table = Table(title="Run summary", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("raceIds", ", ".join(f"{r.race_id} (class {r.class_id})" for r in summary.races))
    table.add_row(
        "seconds played", f"{summary.seconds_played}" + (" (stopped early)" if summary.stopped_early else "")
    )
    table.add_row("messages generated", f"{summary.messages_generated:,}")
    table.add_row("sent", f"{summary.sent:,}")
    table.add_row("retried", f"{summary.retried:,}")
    table.add_row("failed", f"{summary.failed:,}")
    for code, count in sorted(summary.failures_by_code.items()):
        table.add_row(f"  {code}", f"{count:,}")
    table.add_row("duration", f"{summary.duration_seconds:.1f} s")
    return table
