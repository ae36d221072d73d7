"""The per-source status bar: ok / error with its message, stale data ages, slow calls.

It is on screen all the time, so it is built to stay quiet over a slow SSH link
(benchmarks/README.md, idle): it shows only what matters (an age once data is old,
"slow" once a source's calls are, "polling…" once a poll is), coarsely (ages in
minutes; no per-poll latencies, which jitter: ``--check --format json`` has them),
and when its text does change it repaints only up to the last changed cell.
Textual writes a changed line from the widget's left edge to the end of the
change, so what changes most, the poll state, comes first, padded to a fixed width:
its flip rewrites ten cells, not the whole line (~450 bytes).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from rich.cells import cell_len
from textual.content import Content
from textual.geometry import Region
from textual.widget import Widget

from mltui.durations import humanize_age
from mltui.fleet import FleetSnapshot, SourceStatus
from mltui.widgets.format import clip

SHORT = {
    "prometheus": "prom",
    "mlflow": "mlflow",
    "kubernetes": "k8s",
    "alertmanager": "am",
    "drift": "drift",
}

STATES = ("starting…", "polling…", "PAUSED", "live")
STATE_WIDTH = max(len(s) for s in STATES)
"""The poll state is padded to this width so the sources after it never move."""

SLOW_MS = 1000.0
"""A source whose call takes this long is marked "slow"…"""
SLOW_CLEAR_MS = 500.0
"""…until a call takes less than this: a latency hovering around one threshold would
flip the mark on every poll."""

AGE_TICK_S = 30.0
"""How often screens re-check ages: they are shown in whole minutes."""


def coarse_age(now: datetime, then: datetime) -> str:
    """Minute-granular age: "<1m", "2m", "3h", "5d" (seconds would change every tick)."""
    seconds = (now - then).total_seconds()
    return "<1m" if seconds < 60 else humanize_age(seconds)


def source_line(
    status: SourceStatus, now: datetime, fresh_for: float = 60.0, slow: bool = False
) -> Content:
    """One source: "✓ prom" while fresh, "✓ prom 3m" once its data is old,
    "✓ mlflow slow" when its calls are slow, "✗ mlflow (stale 2m)" when it failed.

    ``fresh_for``: seconds its data counts as fresh (ages are shown in minutes, so
    never less than one).
    """
    name = SHORT.get(status.name, status.name)
    if status.status == "ok":
        slow_text = " [$warning]slow[/]" if slow else ""
        age = ""
        if status.fetched_at is not None:
            seconds = (now - status.fetched_at).total_seconds()
            if seconds >= max(60.0, fresh_for):
                age = " " + coarse_age(now, status.fetched_at)
        return Content.from_markup(
            "[$success]✓[/] $name" + slow_text + "[dim]$age[/]", name=name, age=age
        )
    if status.fetched_at is not None:
        # Older data is still on screen: say how old, so nobody trusts it blindly.
        stale = f"(stale {coarse_age(now, status.fetched_at)})"
        return Content.from_markup(
            "[$error]✗[/] $name [dim italic]$stale[/]", name=name, stale=stale
        )
    return Content.from_markup("[$error]✗[/] $name", name=name)


class Cell(NamedTuple):
    """One character of rendered content with the styles that cover it."""

    char: str
    styles: tuple[object, ...]


def content_lines(content: Content) -> list[list[Cell]]:
    """``content`` as lines of styled characters, to compare two renderings cell by cell."""
    plain = content.plain
    styles: list[tuple[object, ...]] = [() for _ in plain]
    for span in content.spans:
        for i in range(span.start, min(span.end, len(plain))):
            styles[i] = (*styles[i], span.style)
    lines: list[list[Cell]] = [[]]
    for char, style in zip(plain, styles, strict=True):
        if char == "\n":
            lines.append([])
        else:
            lines[-1].append(Cell(char, style))
    return lines


def changed_columns(old: list[Cell], new: list[Cell]) -> tuple[int, int] | None:
    """The cell columns ``[start, end)`` where two lines differ, or None if identical."""
    if old == new:
        return None
    first = 0
    while first < min(len(old), len(new)) and old[first] == new[first]:
        first += 1
    # Cells, not characters: a wide character takes two.
    start = sum(cell_len(c.char) for c in new[:first])
    old_width = sum(cell_len(c.char) for c in old)
    new_width = sum(cell_len(c.char) for c in new)
    if old_width != new_width:
        # Everything after the change moved; the shorter line's tail must be cleared.
        return (start, max(old_width, new_width))
    # Same width: an identical tail stays where it is.
    last_old, last_new = len(old), len(new)
    while last_old > first and last_new > first and old[last_old - 1] == new[last_new - 1]:
        last_old -= 1
        last_new -= 1
    end = sum(cell_len(c.char) for c in new[:last_new])
    return (start, max(end, start + 1))


class StatusBar(Widget):
    """Sources at a glance, then the first error in full (clipped to one line)."""

    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 2; padding: 0 1; background: $panel; }
    """

    def __init__(
        self,
        clock: Callable[[], datetime],
        fresh_for: Callable[[str], float] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._clock = clock
        self._fresh_for = fresh_for
        """Seconds each source's data counts as fresh (default: the app's ``fresh_for``)."""
        self._snapshot: FleetSnapshot | None = None
        self._state = "starting…"
        self._content = Content("")
        self._lines: list[list[Cell]] | None = None
        """What is on screen, cell by cell (None: nothing painted yet)."""
        self._painted_width = 0
        self._slow: set[str] = set()
        """Sources marked slow (see ``SLOW_MS``)."""

    def render(self) -> Content:
        return self._content

    def show(self, snapshot: FleetSnapshot | None, state: str) -> None:
        """Remember what to show; repaint only when the text really changes."""
        self._snapshot, self._state = snapshot, state
        self.tick()

    def tick(self) -> None:
        """Recompute ages (called on a slow interval) and repaint what changed, if anything."""
        content = self._compose_content()
        lines = content_lines(content)
        old, width = self._lines, self.content_region.width
        if old == lines and width == self._painted_width:
            return  # over SSH every repaint costs bytes
        self._content = content
        self._lines = lines
        partial = (
            old is not None
            and self.is_mounted
            and width > 0
            and width == self._painted_width
            and len(old) == len(lines)
            # A line wider than the bar wraps: then cells move, repaint it all.
            and all(sum(cell_len(c.char) for c in line) <= width for line in (*old, *lines))
        )
        self._painted_width = width
        if not partial:
            self.refresh(layout=True)
            return
        assert old is not None
        # Same lines and width: only the changed cells, and no layout pass (a layout
        # repaints neighbours too, e.g. the table's scrollbar).
        for y, (before, after) in enumerate(zip(old, lines, strict=True)):
            columns = changed_columns(before, after)
            if columns is not None:
                start, end = columns
                self.refresh(Region(start, y, min(end, width) - start, 1))

    def _compose_content(self) -> Content:
        now = self._clock()
        pad = " " * max(0, STATE_WIDTH - len(self._state))
        parts: list[Content] = [Content.from_markup("[b]$state[/]$pad", state=self._state, pad=pad)]
        errors: list[str] = []
        snapshot = self._snapshot
        fresh_for = self._fresh_for or getattr(self.app, "fresh_for", None)
        if snapshot is not None:
            for status in snapshot.sources.values():
                if status.status == "not_configured":
                    continue
                fresh = fresh_for(status.name) if fresh_for is not None else 60.0
                parts.append(source_line(status, now, fresh, self._is_slow(status)))
                if status.status == "error" and status.error:
                    errors.append(f"{status.name}: {status.error}")
        line = Content("  ").join(parts)
        # Config warnings (TLS verification off, a world-readable file holding a
        # credential) stay on screen for the whole session, ahead of poll errors.
        warnings = list(getattr(getattr(self.app, "config", None), "warnings", ()) or ())
        if errors or warnings:
            width = max(20, self.size.width - 2) if self.size.width else 78
            second: list[Content] = []
            if warnings:
                text = clip("⚠ " + "; ".join(warnings), width)
                second.append(Content.from_markup("[$warning]$w[/]", w=text))
                width = max(0, width - len(text) - 2)
            if errors and width >= 10:
                second.append(
                    Content.from_markup("[$error]$err[/]", err=clip("; ".join(errors), width))
                )
            line = line + Content("\n") + Content("  ").join(second)
        return line

    def _is_slow(self, status: SourceStatus) -> bool:
        """Whether to mark ``status``'s source slow, with hysteresis (see ``SLOW_CLEAR_MS``)."""
        took = status.latency_ms
        if status.status != "ok" or took is None or took < SLOW_CLEAR_MS:
            self._slow.discard(status.name)
        elif took >= SLOW_MS:
            self._slow.add(status.name)
        return status.name in self._slow

    def on_resize(self) -> None:
        self.tick()  # the error line is clipped to the width
