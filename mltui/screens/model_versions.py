"""The model screen's Versions tab: registry versions, and two of them side by side.

``m`` marks a version (two at most: a third mark drops the oldest), ``c`` compares
the marked pair's metrics and params, ``d`` toggles differences-only.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from mltui.fleet import ModelState, ModelVersion, Registry
from mltui.widgets.format import clip, when

KEY_METRICS = 2
"""Run metrics shown per version in the table (alphabetical; all in compare)."""


def dataset_text(version: ModelVersion) -> str:
    if not version.datasets:
        return "-"
    d = version.datasets[0]
    return f"{d.name}@{d.digest[:8]}" if d.digest else d.name


def metrics_text(version: ModelVersion) -> str:
    items = sorted(version.metrics.items())[:KEY_METRICS]
    return " ".join(f"{k}={v:.4g}" for k, v in items) or "-"


def compare_rows(a: ModelVersion, b: ModelVersion, diff_only: bool) -> list[tuple[str, str, str]]:
    """(key, value in a, value in b) for every metric and param; "-" where absent."""
    rows: list[tuple[str, str, str]] = []
    for prefix, left, right in (("metric", a.metrics, b.metrics), ("param", a.params, b.params)):
        for key in sorted({*left, *right}):
            va = _fmt(left.get(key))
            vb = _fmt(right.get(key))
            if diff_only and va == vb:
                continue
            rows.append((f"{prefix} {key}", va, vb))
    return rows


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class VersionsPane(Vertical):
    """Versions table, and the compare table under it once two are marked."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registry: Registry | None = None
        self.marked: list[str] = []
        self.diff_only = False
        self.comparing = False
        self._shown: tuple[Any, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="versions-note", classes="pane-note")
        yield DataTable(id="versions-table", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="compare-table", cursor_type="row")

    def on_mount(self) -> None:
        self.query_one("#versions-table", DataTable).add_columns(
            " ", "version", "aliases", "created", "status", "run", "metrics", "dataset"
        )

    def show(self, model: ModelState) -> None:
        registry = model.registry
        note = self.query_one("#versions-note", Static)
        if registry is None:
            why = model.errors.get("mlflow", "MLflow is not configured ([mlflow] tracking_uri)")
            note.update(f"no registry data: {why}")
        else:
            stale = " (stale)" if "mlflow" in model.stale else ""
            note.update(
                f"{registry.name}: {len(registry.versions)} versions{stale} · "
                "m mark · c compare two · d differences only"
            )
        key = (registry, tuple(self.marked))
        if key == self._shown:
            return  # unchanged: keep cursor and scroll, send nothing
        self._shown = key
        self.registry = registry
        table = self.query_one("#versions-table", DataTable)
        row = table.cursor_row
        table.clear()
        for v in registry.versions if registry else ():
            table.add_row(
                "*" if v.version in self.marked else " ",
                v.version,
                ", ".join(v.aliases) or "-",
                when(v.created),
                v.status or "-",
                (v.run_id or "-")[:8],
                clip(metrics_text(v), 30),
                clip(dataset_text(v), 24),
                key=v.version,
            )
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)
        if self.comparing:
            self.compare()

    def current_version(self) -> str | None:
        table = self.query_one("#versions-table", DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def toggle_mark(self) -> None:
        version = self.current_version()
        if version is None:
            return
        if version in self.marked:
            self.marked.remove(version)
        else:
            self.marked = [*self.marked, version][-2:]
        self._shown = None
        if self.registry is not None:
            self.show_registry()

    def show_registry(self) -> None:
        table = self.query_one("#versions-table", DataTable)
        for v in self.registry.versions if self.registry else ():
            table.update_cell(
                v.version, table.ordered_columns[0].key, "*" if v.version in self.marked else " "
            )
        self._shown = (self.registry, tuple(self.marked))

    def compare(self) -> bool:
        """Fill the compare table from the two marked versions; False if not two."""
        reg = self.registry
        found = [reg.version(v) for v in self.marked] if reg else []
        pair = [v for v in found if v is not None]
        table = self.query_one("#compare-table", DataTable)
        if len(pair) != 2:
            return False
        a, b = sorted(pair, key=lambda v: (len(v.version), v.version))
        table.clear(columns=True)
        title = " (differences only)" if self.diff_only else ""
        table.add_columns(f"compare{title}", f"v{a.version}", f"v{b.version}")
        table.add_rows(compare_rows(a, b, self.diff_only) or [("(no differences)", "", "")])
        table.add_class("-shown")
        self.comparing = True
        return True

    def toggle_diff_only(self) -> None:
        self.diff_only = not self.diff_only
        if self.comparing:
            self.compare()
