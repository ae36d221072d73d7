"""The model screen's Drift tab.

Widget API (the drift issue extends this module): ``DriftPane.show(model,
drift_config, status)`` with the model's state, its ``[models.drift]`` config (None
when it has none) and the drift source's status. Features come sorted by score.

Below the table, the highlighted feature's reference vs current distribution (when
the drift source computed one). ``e`` saves the full Evidently HTML report to a file
under the state dir and shows its path (over SSH there is no browser to open it in).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from mltui.config import DriftConfig
from mltui.fleet import Drift, FeatureDrift, ModelState, SourceStatus
from mltui.widgets.format import num, pct, when

NOT_CONFIGURED = (
    "Drift is not configured for this model. Add a \\[models.drift] table with "
    'reference = "mlflow" (or a parquet/csv path) and current = "<inference logs glob>".'
)


class DistributionChart(PlotextPlot):
    """Reference vs current shares per bin (numeric) or category, side by side."""

    def show(self, feature: FeatureDrift) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        verdict = "drifted" if feature.drifted else "not drifted"
        plt.title(f"{feature.column}: reference vs current ({feature.method}, {verdict})")
        # plotext takes ``labels`` (one per series) at runtime; its type stub says ``label``.
        plt.multiple_bar(  # type: ignore[call-arg]
            list(feature.bins),
            [
                [100 * x for x in feature.reference_share],
                [100 * x for x in feature.current_share],
            ],
            labels=["reference", "current"],
        )
        plt.ylabel("% of rows")
        self.refresh()


class DriftPane(Vertical):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("e", "export_report", "Export report", id="export_drift"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Drift | None = None
        self._model: str | None = None
        self._configured = False

    def compose(self) -> ComposeResult:
        yield Static("", id="drift-note", classes="pane-note")
        yield DataTable(id="drift-table", cursor_type="row", zebra_stripes=True)
        chart = DistributionChart(id="drift-chart")
        chart.styles.height = 14
        chart.display = False
        yield chart

    def on_mount(self) -> None:
        self.query_one("#drift-table", DataTable).add_columns(
            "feature", "drifted", "score", "threshold", "method", "type"
        )

    def show(
        self, model: ModelState, drift_config: DriftConfig | None, status: SourceStatus
    ) -> None:
        note = self.query_one("#drift-note", Static)
        table = self.query_one("#drift-table", DataTable)
        self._model = model.name
        if self._configured != (drift_config is not None and drift_config.drift_query is None):
            # Only computed drift has an Evidently report to export.
            self._configured = not self._configured
            self.refresh_bindings()
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
        # The collector already orders features most drifted first, which raw scores
        # cannot do alone: for p-value tests (ks, chisquare) a *lower* score is worse.
        for f in d.features:
            table.add_row(
                f.column,
                "yes" if f.drifted else "no",
                num(f.score, 4),
                num(f.threshold, 4),
                f.method,
                f.column_type or "-",
                key=f.column,
            )
        self._chart_for(d.features[0] if d.features else None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._shown is None or event.row_key.value is None:
            return
        name = event.row_key.value
        self._chart_for(next((f for f in self._shown.features if f.column == name), None))

    def _chart_for(self, feature: FeatureDrift | None) -> None:
        chart = self.query_one("#drift-chart", DistributionChart)
        # Results from drift_query, or recorded ones, carry no distributions: no chart.
        chart.display = feature is not None and bool(feature.bins)
        if feature is not None and feature.bins:
            chart.show(feature)

    # ------------------------------------------------------------- export

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "export_report":
            return self._configured  # hidden where there is no report to export
        return True

    def action_export_report(self) -> None:
        if self._model is None:
            return
        self.notify(f"computing the drift report for {self._model}…", timeout=3)
        self._export(self._model)

    @work(thread=True, exclusive=True, exit_on_error=False, group="drift-export")
    def _export(self, model_name: str) -> None:
        from mltui.collectors.base import SourceError
        from mltui.locations import state_dir

        app: Any = self.app
        model = app.config.model(model_name)
        get_source = getattr(app.collector, "source", None)
        if model is None or model.drift is None or get_source is None:
            app.call_from_thread(
                self.notify, f"{model_name}: drift is not configured", severity="warning"
            )
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = state_dir() / "reports" / f"{model_name}-drift-{stamp}.html"
        try:
            saved = get_source("drift").export_html(model, path)
        except SourceError as exc:
            app.call_from_thread(self.notify, f"export failed: {exc}", severity="error")
            return
        except Exception as exc:  # noqa: BLE001 - a failed export is a notification, not a crash
            from mltui.secrets import error_text

            app.call_from_thread(self.notify, f"export failed: {error_text(exc)}", severity="error")
            return
        app.call_from_thread(self.notify, f"drift report saved: {saved}", timeout=30)
