"""A time-series chart: textual-plotext wrapped so it can be swapped for a Sparkline.

Times are drawn as minutes before the newest point, so a chart reads the same
whenever it is drawn (and snapshots of recorded data are stable).
"""

from __future__ import annotations

from collections.abc import Sequence

from textual_plotext import PlotextPlot

from mltui.fleet import Point, finite

LINE_COLOURS = ("cyan", "orange", "magenta", "green", "blue")
THRESHOLD_COLOURS = {"warn": "yellow", "crit": "red"}


class Chart(PlotextPlot):
    """One chart: several named lines over time, plus horizontal SLO thresholds."""

    def __init__(self, title: str, **kwargs: str) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.title = title
        self.lines: list[tuple[str, tuple[Point, ...]]] = []
        self.thresholds: list[tuple[str, float]] = []
        self.message: str | None = None

    def plot(
        self,
        lines: Sequence[tuple[str, Sequence[Point]]],
        thresholds: Sequence[tuple[str, float | None]] = (),
        message: str | None = None,
    ) -> None:
        """Replace what is drawn; empty lines and unknown thresholds are skipped."""
        self.lines = [(label, tuple(points)) for label, points in lines if points]
        self.thresholds = [(label, value) for label, value in thresholds if value is not None]
        self.message = message
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        title = self.title
        if self.thresholds:
            title += "  (" + " ".join(f"{k} {v:g}" for k, v in self.thresholds) + ")"
        if self.message:
            title += f"  — {self.message}"
        plt.title(title)
        ends = [pts[-1][0] for _, pts in self.lines]
        end = max(ends) if ends else 0.0
        for i, (label, points) in enumerate(self.lines):
            xs, ys = [], []
            for t, v in points:
                value = finite(v)
                if value is not None:  # gaps stay gaps: no made-up zeros
                    xs.append((t - end) / 60.0)
                    ys.append(value)
            if xs:
                plt.plot(
                    xs, ys, label=label, color=LINE_COLOURS[i % len(LINE_COLOURS)], marker="braille"
                )
        for label, value in self.thresholds:
            plt.hline(value, THRESHOLD_COLOURS.get(label, "red"))
        plt.xlabel("minutes ago")
        self.refresh()
