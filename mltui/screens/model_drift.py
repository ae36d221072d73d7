"""The model screen's Drift tab.

Widget API (the drift issue extends this module): ``DriftPane.show(model,
drift_config, status)`` with the model's state, its ``[models.drift]`` config (None
when it has none) and the drift source's status. Features come sorted by score.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static

from mltui.config import DriftConfig
from mltui.fleet import Drift, ModelState, SourceStatus
from mltui.widgets.format import num, pct, when

NOT_CONFIGURED = (
    "Drift is not configured for this model. Add a \\[models.drift] table with "
    'reference = "mlflow" (or a parquet/csv path) and current = "<inference logs glob>".'
)


class DriftPane(Vertical):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Drift | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="drift-note", classes="pane-note")
        yield DataTable(id="drift-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#drift-table", DataTable).add_columns(
            "feature", "drifted", "score", "threshold", "method", "type"
        )

    def show(
        self, model: ModelState, drift_config: DriftConfig | None, status: SourceStatus
    ) -> None:
        note = self.query_one("#drift-note", Static)
        table = self.query_one("#drift-table", DataTable)
        if drift_config is None:
            note.update(Content.from_markup(NOT_CONFIGURED))
            table.display = False
            return
        d = model.drift
        if d is None:
            why = (
                model.errors.get("drift")
                or status.error
                or "not computed yet (drift runs on a slower cadence)"
            )
            note.update(Content(f"no drift result: {why}"))
            table.display = False
            return
        table.display = True
        stale = " · stale" if "drift" in model.stale else ""
        rows = (
            f" · reference {d.reference_rows} rows, current {d.current_rows} rows"
            if d.reference_rows
            else ""
        )
        note.update(
            Content(
                f"drifted share {pct(d.share, 0)} ({len(d.drifted)} of {len(d.features)} features)"
                f"{rows} · computed {when(d.computed_at)}{stale}"
            )
        )
        if d == self._shown:
            return
        self._shown = d
        table.clear()
        features = sorted(d.features, key=lambda f: (f.score is None, -(f.score or 0.0)))
        for f in features:
            table.add_row(
                f.column,
                "yes" if f.drifted else "no",
                num(f.score, 4),
                num(f.threshold, 4),
                f.method,
                f.column_type or "-",
            )
