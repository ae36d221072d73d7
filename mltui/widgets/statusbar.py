"""The per-source status bar: ok / error with its message, data age, call latency."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.content import Content
from textual.widgets import Static

from mltui.fleet import FleetSnapshot, SourceStatus
from mltui.widgets.format import age, clip

SHORT = {
    "prometheus": "prom",
    "mlflow": "mlflow",
    "kubernetes": "k8s",
    "alertmanager": "am",
    "drift": "drift",
}


def source_line(status: SourceStatus, now: datetime, latency: bool = True) -> Content:
    """One source, e.g. "✓ prom 12ms 4s" (call latency, data age) or "✗ mlflow (stale 2m)"."""
    name = SHORT.get(status.name, status.name)
    if status.status == "ok":
        shown = latency and status.latency_ms is not None
        latency_text = f" {status.latency_ms:.0f}ms" if shown else ""
        return Content.from_markup(
            "[$success]✓[/] $name$latency [dim]$age[/]",
            name=name,
            latency=latency_text,
            age=age(now, status.fetched_at),
        )
    if status.fetched_at is not None:
        # Older data is still on screen: say how old, so nobody trusts it blindly.
        stale = f"(stale {age(now, status.fetched_at)})"
        return Content.from_markup(
            "[$error]✗[/] $name [dim italic]$stale[/]", name=name, stale=stale
        )
    return Content.from_markup("[$error]✗[/] $name", name=name)


class StatusBar(Static):
    """Sources at a glance, then the first error in full (clipped to one line)."""

    DEFAULT_CSS = """
    StatusBar { height: auto; max-height: 2; padding: 0 1; background: $panel; }
    """

    def __init__(self, clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__("", **kwargs)  # type: ignore[arg-type]
        self._clock = clock
        self._snapshot: FleetSnapshot | None = None
        self._state = "starting…"
        self._shown: str | None = None

    def show(self, snapshot: FleetSnapshot | None, state: str) -> None:
        """Remember what to show; repaint only when the text really changes."""
        self._snapshot, self._state = snapshot, state
        self.tick()

    def tick(self) -> None:
        """Recompute ages (called on a slow interval) and repaint if anything moved."""
        content = self._compose_content()
        key = content.markup
        if key != self._shown:  # over SSH every repaint costs bytes
            # Same number of lines: same height, so skip the layout pass (a layout
            # repaints neighbours too, e.g. the table's scrollbar, on every age tick).
            same_height = self._shown is not None and self._shown.count("\n") == key.count("\n")
            self._shown = key
            self.update(content, layout=not same_height)

    def _compose_content(self) -> Content:
        now = self._clock()
        parts: list[Content] = [Content.from_markup("[b]$state[/]", state=self._state)]
        errors: list[str] = []
        snapshot = self._snapshot
        # Narrow terminals (80 columns) get ages only; latencies need the room.
        wide = self.size.width >= 100
        if snapshot is not None:
            for status in snapshot.sources.values():
                if status.status == "not_configured":
                    continue
                parts.append(source_line(status, now, latency=wide))
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

    def on_resize(self) -> None:
        self.tick()  # the layout (latencies shown or not) depends on the width
