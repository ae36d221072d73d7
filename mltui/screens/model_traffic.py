"""The model screen's Traffic tab: latency, rps and error-rate charts over a window.

Series come from ``PrometheusSource.series(model, window_s, points)``, fetched in a
thread worker when the tab is shown, the window changes, or a poll lands.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from mltui.config import Config, ModelConfig
from mltui.durations import format_duration
from mltui.fleet import TrafficSeries
from mltui.messages import SeriesLoaded
from mltui.secrets import error_text
from mltui.widgets.chart import Chart

WINDOWS = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0}
POINTS = 120
"""Points per series: enough for a terminal-wide chart, far below Prometheus' 11,000 cap."""


class TrafficPane(VerticalScroll):
    """Three charts; canary lines overlay the stable ones when a canary runs.

    Each chart keeps a readable minimum height; on a short terminal (80x24) the
    pane scrolls (up/down) rather than squashing every chart to one line.
    """

    def __init__(self, model: str, window_s: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model
        self.window_s = window_s
        self.loading = False

    def compose(self) -> ComposeResult:
        yield Static("", id="traffic-note", classes="pane-note")
        yield Chart("latency ms", id="chart-latency", classes="chart")
        yield Chart("requests/s", id="chart-rps", classes="chart")
        yield Chart("error rate", id="chart-errors", classes="chart")

    def set_window(self, window_s: float) -> None:
        self.window_s = window_s
        self.load()

    def load(self) -> None:
        """Fetch the series (unless a fetch is already running)."""
        app: Any = self.app
        collector = app.collector
        names = collector.source_names
        if "prometheus" not in names and "scrape" not in names:
            self._note("Prometheus is not configured: no charts (add a [prometheus] section).")
            return
        if self.loading:
            return
        self.loading = True
        self._note(f"window {format_duration(self.window_s)} · loading…")
        self._fetch(collector, model_config(app.config, collector, self.model), self.window_s)

    @work(thread=True, exclusive=True, exit_on_error=False, group="series")
    def _fetch(self, collector: Any, model: ModelConfig | None, window_s: float) -> None:
        try:
            name = "prometheus" if "prometheus" in collector.source_names else "scrape"
            series_of = getattr(collector.source(name), "series", None)
            if series_of is None or model is None:
                result = TrafficSeries(window_s, 0.0, error="this source gives no history")
            else:
                result = series_of(model, window_s, POINTS)
        except Exception as exc:  # errors are values
            result = TrafficSeries(window_s, 0.0, error=error_text(exc))
        self.post_message(SeriesLoaded(self.model, window_s, result))

    def on_series_loaded(self, message: SeriesLoaded) -> None:
        message.stop()
        self.loading = False
        if message.window_s != self.window_s:
            # A window key was pressed while this fetch ran (load() refused to start a
            # second one): drop the stale series and fetch the window now asked for.
            self.load()
            return
        self.show(message.series)

    def show(self, data: TrafficSeries) -> None:
        """Draw ``data`` (also callable directly, e.g. from tests)."""
        app: Any = self.app
        config: Config = app.config
        mc = config.model(self.model)
        slo = config.slo_for(mc) if mc is not None else config.slo
        s = data.series
        note = f"window {format_duration(data.window_s)}"
        if data.step_s:
            note += f" · step {format_duration(data.step_s)}"
        note += " · keys 1 2 3 4: 15m 1h 6h 24h"
        if data.error:
            note += f" · {data.error}"
        self._note(note)
        canary = any(k.startswith("canary:") for k in s)
        latency = [(q, s.get(q, ())) for q in ("p50", "p95", "p99")]
        if canary:
            latency.append(("canary p95", s.get("canary:p95", ())))
        self.query_one("#chart-latency", Chart).plot(
            latency,
            [("warn", slo.latency_p95_ms.warn), ("crit", slo.latency_p95_ms.crit)],
            None if any(p for _, p in latency) else "no traffic",
        )
        rps = [("stable" if canary else "rps", s.get("stable:rps", s.get("rps", ())))]
        if canary:
            rps.append(("canary", s.get("canary:rps", ())))
        self.query_one("#chart-rps", Chart).plot(rps)
        errors = [
            (
                "stable" if canary else "error rate",
                s.get("stable:error_rate", s.get("error_rate", ())),
            )
        ]
        if canary:
            errors.append(("canary", s.get("canary:error_rate", ())))
        self.query_one("#chart-errors", Chart).plot(
            errors, [("warn", slo.error_rate.warn), ("crit", slo.error_rate.crit)]
        )

    def _note(self, text: str) -> None:
        self.query_one("#traffic-note", Static).update(text)


def model_config(config: Config, collector: Any, name: str) -> ModelConfig | None:
    """The model's config entry, or the discovered one the collector uses."""
    found = config.model(name)
    if found is not None:
        return found
    models = getattr(collector, "models", None)
    if callable(models):
        try:
            return next((m for m in models() if m.name == name), None)
        except Exception:  # noqa: BLE001 - discovery errors show in the status bar
            return None
    return None
