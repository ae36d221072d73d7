"""The model screen's Alerts tab: this model's alerts from Alertmanager."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from mltui.fleet import Alert, ModelState, SourceStatus
from mltui.widgets.format import when


class AlertsPane(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[Alert, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="alerts-note", classes="pane-note")
        yield DataTable(id="alerts-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#alerts-table", DataTable).add_columns(
            "alert", "severity", "state", "since", "summary"
        )

    def show(self, model: ModelState, status: SourceStatus) -> None:
        note = self.query_one("#alerts-note", Static)
        if status.status == "not_configured":
            note.update(
                Content.from_markup("Alertmanager is not configured (add an \\[alertmanager] url).")
            )
            return
        firing = sum(1 for a in model.alerts if a.state == "active" and not a.silenced)
        stale = " (stale)" if "alertmanager" in model.stale else ""
        error = f" · {model.errors['alertmanager']}" if "alertmanager" in model.errors else ""
        note.update(Content(f"{firing} firing, {len(model.alerts)} in all{stale}{error}"))
        if model.alerts == self._shown:
            return
        self._shown = model.alerts
        table = self.query_one("#alerts-table", DataTable)
        table.clear()
        for a in model.alerts:
            state = "silenced" if a.silenced else a.state
            table.add_row(a.name, a.severity or "-", state, when(a.starts_at), a.summary or "-")
