"""One model in depth: Traffic, Versions, Rollout, Drift and Alerts tabs (Enter on a row)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static, TabbedContent, TabPane

from mltui.app import ACTIONS, MltuiApp
from mltui.fleet import ModelState
from mltui.screens.fleet_columns import HEALTH_LABEL
from mltui.screens.model_alerts import AlertsPane
from mltui.screens.model_drift import DriftPane
from mltui.screens.model_rollout import RolloutPane
from mltui.screens.model_traffic import WINDOWS, TrafficPane
from mltui.screens.model_versions import VersionsPane
from mltui.widgets.statusbar import StatusBar

TABS = ("traffic", "versions", "rollout", "drift", "alerts")


class ModelScreen(Screen[None]):
    """Tabs for one model; esc goes back to the fleet."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="back"),
        Binding("right_square_bracket", "next_tab", "Next tab", id="next_tab"),
        Binding("left_square_bracket", "prev_tab", "Prev tab", show=False, id="prev_tab"),
        Binding("1", "window('15m')", "15m", id="window_15m"),
        Binding("2", "window('1h')", "1h", id="window_1h"),
        Binding("3", "window('6h')", "6h", id="window_6h"),
        Binding("4", "window('24h')", "24h", id="window_24h"),
        Binding("m", "mark", "Mark", id="mark"),
        Binding("c", "compare", "Compare", id="compare"),
        Binding("d", "diff_only", "Diff only", id="diff_only"),
        # The Drift pane has the same key for when it has focus; this one works from the tabs.
        Binding("e", "export_drift", "Export report", show=False, id="export_drift"),
        Binding("P", "model_action('promote')", "Promote", show=False, id="promote"),
        Binding("B", "model_action('rollback')", "Rollback", show=False, id="rollback"),
        Binding("T", "model_action('retrain')", "Retrain", show=False, id="retrain"),
    ]

    def __init__(self, model: str) -> None:
        super().__init__()
        self.model = model

    @property
    def mltui(self) -> MltuiApp:
        assert isinstance(self.app, MltuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static("", id="model-header")
        with TabbedContent(id="model-tabs", initial="traffic"):
            with TabPane("Traffic", id="traffic"):
                yield TrafficPane(self.model, self.mltui.config.window, id="traffic-pane")
            with TabPane("Versions", id="versions"):
                yield VersionsPane(id="versions-pane")
            with TabPane("Rollout", id="rollout"):
                yield RolloutPane(id="rollout-pane")
            with TabPane("Drift", id="drift"):
                yield DriftPane(id="drift-pane")
            with TabPane("Alerts", id="alerts"):
                yield AlertsPane(id="alerts-pane")
        yield StatusBar(self.mltui.clock, id="model-status")
        yield Footer()

    def on_mount(self) -> None:
        self.watch(self.mltui, "snapshot", self._refresh_view, init=False)
        self._refresh_view()
        self.query_one(TrafficPane).load()
        self._focus_pane("traffic")

    def on_screen_resume(self) -> None:
        self._refresh_view()

    @property
    def state(self) -> ModelState | None:
        snapshot = self.mltui.snapshot
        return snapshot.model(self.model) if snapshot is not None else None

    def _refresh_view(self, *_: object) -> None:
        app = self.mltui
        self.query_one(StatusBar).show(app.snapshot, app.state_text())
        if not self.is_current:
            return
        state = self.state
        header = self.query_one("#model-header", Static)
        if state is None:
            header.update(Content(f"{self.model}: no data yet"))
            return
        health = app.health.models.get(self.model) if app.health else None
        header.update(header_text(state, health.status if health else "unknown"))
        snapshot = app.snapshot
        assert snapshot is not None
        self.query_one(VersionsPane).show(state)
        self.query_one(RolloutPane).show(state)
        config = app.config.model(self.model)
        self.query_one(DriftPane).show(
            state, config.drift if config else None, snapshot.source("drift")
        )
        self.query_one(AlertsPane).show(state, snapshot.source("alertmanager"))
        if self.query_one(TabbedContent).active == "traffic":
            self.query_one(TrafficPane).load()  # charts follow the polls

    # ------------------------------------------------------------- actions

    def action_back(self) -> None:
        self.dismiss()

    def _switch(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = TABS.index(tabs.active) if tabs.active in TABS else 0
        tabs.active = TABS[(index + step) % len(TABS)]
        self.refresh_bindings()

    def action_next_tab(self) -> None:
        self._switch(1)

    def action_prev_tab(self) -> None:
        self._switch(-1)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self.refresh_bindings()  # window keys show on Traffic, mark/compare on Versions
        self._focus_pane(event.pane.id)
        if event.pane.id == "traffic":
            self.query_one(TrafficPane).load()

    def _focus_pane(self, pane: str | None) -> None:
        """Arrow keys act on the tab's content (its table, or the scrolling charts)."""
        if pane == "traffic":
            self.query_one(TrafficPane).focus()
            return
        tables = self.query(f"#{pane} DataTable")
        if tables:
            tables.first().focus()

    def action_window(self, window: str) -> None:
        self.query_one(TrafficPane).set_window(WINDOWS[window])

    def action_mark(self) -> None:
        self.query_one(VersionsPane).toggle_mark()

    def action_compare(self) -> None:
        if not self.query_one(VersionsPane).compare():
            self.notify("mark two versions with m first", severity="warning")

    def action_diff_only(self) -> None:
        self.query_one(VersionsPane).toggle_diff_only()

    def action_model_action(self, action: str) -> None:
        if action in ACTIONS:
            self.mltui.request_action(action, self.model)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "model_action":
            return not self.mltui.config.read_only
        tabs = self.query(TabbedContent)
        active = tabs.first().active if tabs else "traffic"
        if action == "window":
            return active == "traffic"
        if action in ("mark", "compare", "diff_only"):
            return active == "versions"
        if action == "export_drift":
            return active == "drift"
        return True

    def action_export_drift(self) -> None:
        self.query_one(DriftPane).action_export_report()


def header_text(state: ModelState, status: str) -> Content:
    """ "churn · ▲ warn · serving v3 · champion 3 · challenger 4 · progressing 10%"."""
    parts = [state.name, HEALTH_LABEL.get(status, status)]
    if state.registered_model != state.name:
        parts.append(f"registry {state.registered_model}")
    parts.append(f"serving v{state.serving_version}" if state.serving_version else "serving ?")
    reg = state.registry
    if reg is not None:
        parts.append(f"champion {reg.champion or '-'}")
        if reg.challenger:
            parts.append(f"challenger {reg.challenger}")
    r = state.rollout
    if r is not None:
        parts.append(
            r.state + (f" canary {r.canary_weight}%" if r.canary_weight is not None else "")
        )
    line = " · ".join(parts)
    if state.stale:
        line += f" · stale: {', '.join(sorted(state.stale))}"
    return Content(line)
