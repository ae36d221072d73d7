"""The home screen: one row per model, sortable, filterable, updated in place.

Rows are keyed by model name. A poll that changes only values updates just the
changed cells (cursor and scroll stay put, and nothing is sent to the terminal
for cells that did not change); only a change of the row set or order rebuilds
the rows, and the cursor then follows its model.
"""

from __future__ import annotations

from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from mltui.app import ACTIONS, MltuiApp
from mltui.fleet import FleetSnapshot
from mltui.health import FleetHealth
from mltui.locations import default_config_path
from mltui.screens.fleet_columns import (
    COLUMN_KEYS,
    Column,
    Row,
    column,
    fit_columns,
    matches,
    ordered,
)
from mltui.widgets.statusbar import AGE_TICK_S, StatusBar
from mltui.widgets.table import QuietDataTable

# Which health check colours which column's cell.
CHECK_OF_COLUMN = {
    "p95": "latency_p95",
    "errors": "error_rate",
    "drift": "drift_share",
    "rollout": "rollout",
}

STATUS_COLOUR = {"ok": "success", "warn": "warning", "crit": "error", "unknown": ""}
"""Theme variable per status; unknown is dimmed instead (text-muted is not a plain colour)."""

EMPTY_HELP = """\
[b]No models configured.[/b]

mltui reads its config from [b]$path[/b]
(or [b]--config PATH[/b], or [b]$MLTUI_CONFIG[/b]). A minimal one:

  \\[prometheus]
  url = "http://127.0.0.1:9090"

  \\[\\[models]]
  name = "churn"
  metrics = "kserve"     # kserve | mlserver | bentoml | triton | …

With an \\[mlflow] tracking_uri and no \\[\\[models]], every registered model is shown.
Press [b]q[/b] to quit."""


class FleetScreen(Screen[None]):
    """Every model at a glance."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="filter"),
        Binding("s", "sort_next", "Sort", id="sort"),
        Binding("S", "sort_reverse", "Reverse", id="sort_reverse"),
        Binding("escape", "clear_filter", "Clear filter", show=False, id="clear_filter"),
        # Actions sit on shifted letters, away from navigation keys; the actions
        # issue implements them behind MltuiApp.request_action.
        Binding("P", "model_action('promote')", "Promote", show=False, id="promote"),
        Binding("B", "model_action('rollback')", "Rollback", show=False, id="rollback"),
        Binding("T", "model_action('retrain')", "Retrain", show=False, id="retrain"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_key = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self._col_keys: list[str] = []
        self._row_keys: list[str] = []
        self._cells: dict[str, list[tuple[str, str]]] = {}
        self._total = 0
        self._header_text: str | None = None

    @property
    def mltui(self) -> MltuiApp:
        assert isinstance(self.app, MltuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Static("", id="fleet-header")
        with Vertical():
            yield QuietDataTable(id="fleet-table", cursor_type="row", zebra_stripes=True)
            yield Static("", id="empty")
        yield Input(placeholder="filter (substring; ! inverts)", id="filter")
        yield StatusBar(self.mltui.clock, self.mltui.fresh_for, id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#empty").display = False
        app = self.mltui
        self.watch(app, "snapshot", self._refresh_view, init=False)
        self.watch(app, "paused", self._refresh_status, init=False)
        # poll_slow, not polling: a quick poll changes nothing on screen.
        self.watch(app, "poll_slow", self._refresh_status, init=False)
        # Ages move even without polls (the bar repaints only when one shows or changes).
        self.set_interval(AGE_TICK_S, self._refresh_status)
        self._refresh_view()
        self.query_one(DataTable).focus()

    def on_resize(self) -> None:
        self._refresh_view()

    def on_screen_resume(self) -> None:
        # Skipped while another screen was on top; catch up now.
        self._refresh_view()

    # ------------------------------------------------------------- rendering

    def _refresh_status(self, *_: object) -> None:
        self.query_one(StatusBar).show(self.mltui.snapshot, self.mltui.state_text())

    def _refresh_view(self, *_: object) -> None:
        self._refresh_status()
        if not self.is_current:
            return  # repaint when we are back on top (on_screen_resume)
        app = self.mltui
        snapshot, health = app.snapshot, app.health
        empty = self.query_one("#empty", Static)
        table = self.query_one("#fleet-table", QuietDataTable)
        if not app.config.models and not app.has_sources:
            path = app.config.source or str(default_config_path())
            empty.update(Content.from_markup(EMPTY_HELP, path=path))
            empty.display, table.display = True, False
            self._header("no config")
            return
        if snapshot is not None and not snapshot.models:
            empty.update(
                Content("No models found: configure [[models]] or register models in MLflow.")
            )
            empty.display, table.display = True, False
            self._header("0 models")
            return
        empty.display, table.display = False, True
        self._render_table(table, snapshot, health)

    def _header(self, text: str) -> None:
        if text == self._header_text:
            return  # an update() re-lays out the screen and repaints the scrollbar too
        self._header_text = text
        self.query_one("#fleet-header", Static).update(Content(text))

    def _render_table(
        self,
        table: QuietDataTable[Text],
        snapshot: FleetSnapshot | None,
        health: FleetHealth | None,
    ) -> None:
        rows = [
            Row(m, health.models.get(m.name) if health else None)
            for m in (snapshot.models if snapshot else ())
        ]
        self._total = len(rows)
        shown = ordered(
            [r for r in rows if matches(r, self.filter_text)], self.sort_key, self.sort_reverse
        )
        name_width = min(24, max([5, *(len(r.model.name) for r in rows)]))
        width = (self.size.width or self.app.size.width) - 2  # the vertical scrollbar
        cols = fit_columns(width, name_width)
        signature = [c.key for c in cols] + [str(name_width)]
        if signature != self._col_keys:
            table.clear(columns=True)
            for col in cols:
                label = col.label + (" ↓" if self.sort_reverse else " ↑") * (
                    col.key == self.sort_key
                )
                table.add_column(
                    label, width=name_width if col.key == "name" else col.width, key=col.key
                )
            self._col_keys = signature
            self._row_keys, self._cells = [], {}
        cells = {r.model.name: [self._cell(col, r) for col in cols] for r in shown}
        keys = [r.model.name for r in shown]
        if keys != self._row_keys:
            current = self._cursor_model(table)
            table.clear()
            for key in keys:
                table.add_row(*(self._text(c) for c in cells[key]), key=key)
            if current in keys:
                table.move_cursor(row=keys.index(current), animate=False)
            self._row_keys = keys
        else:
            for key in keys:
                for col, new, old in zip(cols, cells[key], self._cells.get(key, []), strict=False):
                    if new != old:  # only this cell reaches the terminal
                        table.set_cell(key, col.key, self._text(new))
        self._cells = cells
        self._header_for(len(shown))

    def _header_for(self, shown: int) -> None:
        label = column(self.sort_key).label
        text = f"{shown}/{self._total} models · sort {label} {'↓' if self.sort_reverse else '↑'}"
        if self.filter_text:
            text += f' · filter "{self.filter_text}"'
        self._header(text)

    def _cell(self, col: Column, row: Row) -> tuple[str, str]:
        """(text, style) of one cell: coloured by its check, dimmed when stale."""
        colours = self.app.theme_variables
        style = ""
        if col.key in ("health", "name"):
            status = row.status
            if status == "unknown":
                style = "dim" if col.key == "health" else ""
            elif col.key == "health" or status in ("warn", "crit"):
                style = colours.get(STATUS_COLOUR[status], "")
        elif col.key in CHECK_OF_COLUMN and row.health is not None:
            check = next((c for c in row.health.checks if c.name == CHECK_OF_COLUMN[col.key]), None)
            if check is not None and check.status in ("warn", "crit"):
                style = colours.get(STATUS_COLOUR[check.status], "")
        if col.source is not None and col.source in row.model.stale:
            style = f"{style} dim italic".strip()
        return (col.text(row), style)

    @staticmethod
    def _text(cell: tuple[str, str]) -> Text:
        text, style = cell
        return Text(
            text, style=Style.parse(style) if style else "", no_wrap=True, overflow="ellipsis"
        )

    @staticmethod
    def _cursor_model(table: DataTable[Text]) -> str | None:
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:  # noqa: BLE001 - no valid cursor yet
            return None
        return str(key.value) if key.value is not None else None

    # ------------------------------------------------------------- actions

    def selected_model(self) -> str | None:
        return self._cursor_model(self.query_one("#fleet-table", DataTable))

    @on(DataTable.RowSelected, "#fleet-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.mltui.open_model(str(event.row_key.value))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._refresh_view()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        box = self.query_one("#filter", Input)
        if not box.value:
            box.remove_class("-shown")
        self.query_one(DataTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("-shown")
        self.filter_text = ""
        self.query_one(DataTable).focus()
        self._refresh_view()

    def set_sort(self, key: str, reverse: bool | None = None) -> None:
        """Sort by column ``key`` (also used by tests and the palette)."""
        if key not in COLUMN_KEYS:
            raise ValueError(f"no column {key!r}")
        self.sort_key = key
        if reverse is not None:
            self.sort_reverse = reverse
        self._col_keys = []  # relabel the sorted column
        self._refresh_view()

    def action_sort_next(self) -> None:
        keys = [k for k in self._col_keys if k in COLUMN_KEYS] or list(COLUMN_KEYS)
        index = keys.index(self.sort_key) if self.sort_key in keys else -1
        self.set_sort(keys[(index + 1) % len(keys)])

    def action_sort_reverse(self) -> None:
        self.set_sort(self.sort_key, not self.sort_reverse)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "model_action" and self.mltui.config.read_only:
            return False  # read_only: the bindings disappear from footer and help
        return True

    def action_model_action(self, action: str) -> None:
        model = self.selected_model()
        if model is not None and action in ACTIONS:
            self.mltui.request_action(action, model)
