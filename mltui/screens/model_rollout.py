"""The model screen's Rollout tab: state, replicas, canary, conditions, history."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import DataTable, Static

from mltui.fleet import ModelState, Rollout
from mltui.widgets.format import when


def summary(r: Rollout) -> str:
    """The rollout in a few lines of plain text."""
    where = "/".join(p for p in (r.namespace, r.name) if p)
    context = f" (context {r.context})" if r.context else ""
    lines = [
        f"{r.kind} {where}{context}",
        f"state: {r.state}" + (f" — {r.message}" if r.message else ""),
    ]
    lines.append(f"serving version: {r.serving_version or '-'}")
    if r.canary_version is not None or r.canary_weight is not None:
        canary = f"canary: v{r.canary_version or '?'}"
        if r.canary_weight is not None:
            canary += f" at {r.canary_weight}% of traffic"
        if r.step is not None:
            canary += f", step {r.step}" + (f"/{r.steps}" if r.steps is not None else "")
        lines.append(canary)
    if r.kind != "alias":
        replicas = " ".join(
            f"{k} {v if v is not None else '-'}"
            for k, v in (
                ("desired", r.desired),
                ("updated", r.updated),
                ("ready", r.ready),
                ("available", r.available),
            )
        )
        lines.append(f"replicas: {replicas}")
        lines.append(f"revision: {r.revision or '-'}")
    return "\n".join(lines)


class RolloutPane(VerticalScroll):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: Rollout | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="rollout-summary", classes="pane-note")
        yield Static("conditions", classes="section-title")
        yield DataTable(id="conditions-table", cursor_type="row")
        yield Static("history (newest first)", classes="section-title")
        yield DataTable(id="history-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self.query_one("#conditions-table", DataTable).add_columns(
            "type", "status", "reason", "message", "since"
        )
        self.query_one("#history-table", DataTable).add_columns(
            "revision", "name", "version", "replicas", "created", "image"
        )

    def show(self, model: ModelState) -> None:
        r = model.rollout
        text = self.query_one("#rollout-summary", Static)
        if r is None:
            why = model.errors.get(
                "kubernetes", "no target configured for this model ([models.target])"
            )
            text.update(Content(f"no rollout data: {why}"))
            return
        if r == self._shown:
            return
        self._shown = r
        stale = (
            "\n(stale: kubernetes is not answering; this is the last data it gave)"
            if "kubernetes" in model.stale
            else ""
        )
        text.update(Content(summary(r) + stale))
        cond = self.query_one("#conditions-table", DataTable)
        cond.clear()
        for c in r.conditions:
            cond.add_row(
                c.type, c.status, c.reason or "-", c.message or "-", when(c.last_transition)
            )
        hist = self.query_one("#history-table", DataTable)
        hist.clear()
        for h in r.history:
            hist.add_row(
                h.revision,
                h.name,
                h.version or "-",
                "-" if h.replicas is None else str(h.replicas),
                when(h.created),
                h.image or "-",
            )
