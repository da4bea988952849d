"""What the terminal shows: the live race screen and the result tables (pure rendering)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from alleycat.standings import RaceBoard
from simulator import RaceSpec, RunnerStats


@dataclass
class Throughput:
    """Messages per second over the last few seconds (the runner reports a whole-run average)."""

    window_seconds: float = 5.0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, sent: int, now: float | None = None) -> float:
        """Record the sent counter; return the recent rate."""
        now = time.monotonic() if now is None else now
        self._samples.append((now, sent))
        while len(self._samples) > 2 and now - self._samples[0][0] > self.window_seconds:
            self._samples.popleft()
        (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


@dataclass(frozen=True)
class PipelineFigures:
    """What CloudWatch says about the pipeline during a race (see ``alleycat.dashboard.PipelineWatch``)."""

    throttled_records: int = 0  # records the stream refused since the race began
    throttled_per_s: float = 0.0  # in the latest period
    iterator_age_ms: float | None = None  # the aggregator's, latest period's maximum
    updated_at: float = 0.0  # time.time() of the answer; 0 before the first one


def _pipeline_line(pipeline: PipelineFigures) -> Text:
    if not pipeline.updated_at:
        return Text("throttled records and iterator age: waiting for CloudWatch…", style="dim")
    age = pipeline.iterator_age_ms
    return Text.assemble(
        ("throttled records ", "dim"),
        (f"{pipeline.throttled_records:,}", "bold red" if pipeline.throttled_records else "bold"),
        (f" ({pipeline.throttled_per_s:,.0f}/s now, ProvisionedThroughputExceeded)", "dim"),
        ("   aggregator iterator age ", "dim"),
        ("n/a" if age is None else f"{age / 1000:,.1f} s", "bold yellow" if age and age > 10_000 else "bold"),
    )


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 update``, ``2 updates``, ``1,000 messages``."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def _clock(seconds: int) -> str:
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _shown_rate(stats: RunnerStats | None, rate: float) -> tuple[str, float]:
    """The send rate to show: the recent one while sending; once the race is over, nothing is sent
    any more, so the run's average (a recent rate would freeze at its last value)."""
    if stats is not None and stats.finished:
        return "avg msg/s", stats.messages_per_second
    return "msg/s", rate


def standings_table(title: str | None, rows: Sequence[Mapping[str, Any]], limit: int = 10) -> Table:
    """A top-N table of standings rows as the API and the topics carry them."""
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    table.add_column("#", justify="right", style="bold")
    table.add_column("racer", justify="right", style="dim")
    table.add_column("name")
    table.add_column("total output", justify="right", style="cyan")
    table.add_column("last output", justify="right")
    table.add_column("second", justify="right", style="dim")
    for row in rows[:limit]:
        table.add_row(
            str(row["rank"]),
            str(row["racerId"]),
            str(row["name"]),
            f"{row['totalOutput']:,.2f}",
            f"{row.get('output', 0):,.2f}",
            str(row.get("second", "")),
        )
    if not rows:
        table.add_row("", "", Text("waiting for the first standings…", style="italic dim"), "", "", "")
    return table


def race_screen(
    specs: Sequence[RaceSpec],
    stats: RunnerStats | None,
    rate: float,
    boards: Mapping[int, RaceBoard],
    *,
    target: str,
    max_boards: int = 3,
    pipeline: PipelineFigures | None = None,
) -> RenderableType:
    """The live screen: clock and progress, send counters, throttling and iterator age from
    CloudWatch (with ``pipeline``), and each race's top 10 from MQTT."""
    duration = specs[0].duration
    second = stats.race_second if stats else 0
    sent = stats.sent if stats else 0
    header = Table.grid(padding=(0, 2))
    header.add_column()
    header.add_column()
    header.add_row(
        Text(f"race clock {_clock(second)} / {_clock(duration)}", style="bold"),
        ProgressBar(total=duration, completed=second, width=40),
    )
    rate_label, shown_rate = _shown_rate(stats, rate)
    counters = Text.assemble(
        ("sent ", "dim"),
        (f"{sent:,}", "bold"),
        (f"   {rate_label} ", "dim"),
        (f"{shown_rate:,.0f}", "bold green"),
        ("   retries ", "dim"),
        (f"{stats.retried if stats else 0:,}", "yellow"),
        ("   failed ", "dim"),
        (f"{stats.failed if stats else 0:,}", "red" if stats and stats.failed else "bold"),
    )
    if stats and stats.failures_by_code:
        counters.append("   " + ", ".join(f"{code} {n}" for code, n in stats.failures_by_code.items()), "red")
    parts: list[RenderableType] = [header, counters]
    if pipeline is not None:
        parts.append(_pipeline_line(pipeline))
    for spec in specs[:max_boards]:
        board = boards.get(spec.race_id)
        body = board.body if board else {}
        lag = f" · last update {board.lags[-1]:.1f} s behind the racers" if board and board.lags else ""
        title = (
            f"race {spec.race_id} · class {spec.class_id} · {board.status if board else 'waiting'}"
            f" · {plural(board.updates if board else 0, 'update')} over MQTT{lag}"
        )
        # The title on a line of its own: as the table's title it would wrap at the table's width.
        parts.append(Text(title, style="italic", no_wrap=True, overflow="ellipsis"))
        parts.append(standings_table(None, body.get("standings", [])))
    if len(specs) > max_boards:
        parts.append(Text(f"(+{len(specs) - max_boards} more races)", style="dim"))
    return Panel(Group(*parts), title=f"Alleycat · {len(specs)} race(s) · {target}", border_style="blue")


def progress_line(
    specs: Sequence[RaceSpec], stats: RunnerStats | None, rate: float, boards: Mapping[int, RaceBoard]
) -> str:
    """One plain line of race progress, for output that is not a terminal (a log, ``| tee``)."""
    second = stats.race_second if stats else 0
    rate_label, shown_rate = _shown_rate(stats, rate)
    parts = [
        f"race clock {_clock(second)} / {_clock(specs[0].duration)}",
        f"sent {stats.sent if stats else 0:,}",
        f"{shown_rate:,.0f} {rate_label}",
        f"retries {stats.retried if stats else 0:,}",
        f"failed {stats.failed if stats else 0:,}",
    ]
    for spec in specs:
        board = boards.get(spec.race_id)
        race = f"race {spec.race_id} {board.status if board else 'waiting'}"
        race += f" ({plural(board.updates if board else 0, 'update')})"
        rows = (board.body if board else {}).get("standings", [])
        if rows:
            race += f" leader {rows[0]['racerId']} {rows[0]['name']} {rows[0]['totalOutput']:,.2f}"
        parts.append(race)
    return " · ".join(parts)


class RaceProgress:
    """Shows race progress: a live screen on a terminal; otherwise a plain line every ``interval``
    seconds (and on :meth:`flush`), so a log or ``| tee`` sees the race as it runs."""

    def __init__(
        self,
        console: Console,
        *,
        target: str,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Render on ``console``; ``target`` names where the race runs (the screen's title)."""
        self._console = console
        self._target = target
        self._interval = interval
        self._clock = clock
        self._live: Live | None = None
        self._last_line: float | None = None
        self._line = ""

    def __enter__(self) -> RaceProgress:
        if self._console.is_terminal:
            self._live = Live(console=self._console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)
        else:
            self.flush()

    def show(
        self,
        specs: Sequence[RaceSpec],
        stats: RunnerStats | None,
        rate: float,
        boards: Mapping[int, RaceBoard],
        pipeline: PipelineFigures | None = None,
    ) -> None:
        """The race as it is now: redraw the screen, or print a line when ``interval`` has passed."""
        if self._live is not None:
            self._live.update(race_screen(specs, stats, rate, boards, target=self._target, pipeline=pipeline))
            return
        self._line = progress_line(specs, stats, rate, boards)
        now = self._clock()
        if self._last_line is None or now - self._last_line >= self._interval:
            self._print()

    def flush(self) -> None:
        """Print the latest line if it has not been printed yet (plain output only)."""
        if self._live is None and self._line:
            self._print()

    def _print(self) -> None:
        self._console.print(self._line, soft_wrap=True, markup=False, highlight=False)
        self._last_line = self._clock()
        self._line = ""
