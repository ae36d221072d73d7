"""The plan modal: what an action will change, with Confirm / Dry run / Cancel.

:func:`start_action_flow` runs the whole action in an async worker (STYLE.md #7):
the plan is computed in a thread, shown in :class:`ConfirmActionScreen` awaited
with ``push_screen_wait``, applied in a thread, and its outcome becomes a
notification; the screen then refreshes. Protected targets need the model name
typed before Confirm is enabled. A dry run shows its outcome in the modal and
lets the operator confirm for real or cancel. A half-done action offers the
retry of its missing steps in the same modal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from mltui.actions.plan import Plan, Result, plan_text, result_text
from mltui.secrets import error_text

CONFIRM, DRY_RUN = "confirm", "dry_run"


class ConfirmActionScreen(ModalScreen[str | None]):
    """Shows a plan; dismisses with "confirm", "dry_run" or None (cancel)."""

    DEFAULT_CSS = """
    ConfirmActionScreen { align: center middle; }
    ConfirmActionScreen > #confirm-dialog {
        width: 90%; max-width: 120; height: 90%;
        border: thick $error 60%; background: $surface; padding: 0 1;
    }
    ConfirmActionScreen #confirm-title { text-style: bold; padding-bottom: 1; }
    ConfirmActionScreen #confirm-plan { height: 1fr; }
    ConfirmActionScreen #confirm-outcome { height: auto; max-height: 8; color: $text-muted; padding-top: 1; }
    ConfirmActionScreen #confirm-name { margin-top: 1; }
    ConfirmActionScreen #confirm-buttons { height: auto; align-horizontal: right; padding-top: 1; }
    ConfirmActionScreen #confirm-buttons Button { margin-left: 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="confirm_cancel"),
    ]

    def __init__(
        self, plan: Plan, outcome: Result | None = None, *, title: str | None = None
    ) -> None:
        super().__init__()
        self.plan = plan
        self.outcome = outcome
        self.heading = title or f"{plan.action.capitalize()} {plan.model}?"

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog"):
            yield Static(self.heading, id="confirm-title", markup=False)
            with VerticalScroll(id="confirm-plan"):
                yield Static(plan_text(self.plan), markup=False)
            if self.outcome is not None:
                yield Static(result_text(self.outcome), id="confirm-outcome", markup=False)
            if self.plan.protected:
                yield Input(placeholder=f"type {self.plan.model} to confirm", id="confirm-name")
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Dry run", id="dry-run", variant="primary")
                yield Button("Confirm", id="confirm", variant="error", disabled=self.plan.protected)

    def on_mount(self) -> None:
        # Safe default: Enter on a freshly opened modal cancels (or goes to the name box).
        target = "#confirm-name" if self.plan.protected else "#cancel"
        self.query_one(target).focus()

    @on(Input.Changed, "#confirm-name")
    def _typed(self, event: Input.Changed) -> None:
        self.query_one("#confirm", Button).disabled = event.value.strip() != self.plan.model

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        if (
            self.plan.protected
            and self.query_one("#confirm-name", Input).value.strip() != self.plan.model
        ):
            return
        self.dismiss(CONFIRM)

    @on(Button.Pressed, "#dry-run")
    def _dry_run(self) -> None:
        self.dismiss(DRY_RUN)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


SEVERITY = {"applied": "information", "dry_run": "information", "refused": "warning"}


def start_action_flow(
    app: Any, action: str, model: str, engine_factory: Callable[[Any], Any] | None = None
) -> None:
    """Run :func:`action_flow` as an exclusive async worker of ``app``."""
    app.run_worker(
        action_flow(app, action, model, engine_factory),
        name=f"action-{action}-{model}",
        group="action",
        exclusive=True,
        exit_on_error=False,
    )


async def action_flow(
    app: Any, action: str, model: str, engine_factory: Callable[[Any], Any] | None = None
) -> Result | None:
    """Plan → modal → apply → notify → refresh. Returns the final result (None if cancelled).

    Whatever goes wrong on the way (the engine raising, a broken install) becomes an
    error notification: nothing else watches the "action" worker group, so an
    exception escaping here would end the action silently.
    """
    try:
        return await _action_flow(app, action, model, engine_factory)
    except Exception as exc:  # errors are values: shown, scrubbed, never silent
        app.notify(error_text(exc), title=f"{action} {model} failed", severity="error", timeout=30)
        return None


async def _action_flow(
    app: Any, action: str, model: str, engine_factory: Callable[[Any], Any] | None
) -> Result | None:
    if engine_factory is None:
        from mltui.actions.engine import ActionEngine

        engine_factory = ActionEngine
    engine = engine_factory(app.config)
    snapshot = getattr(app, "snapshot", None)
    state = snapshot.model(model) if snapshot is not None else None
    try:
        plan = await asyncio.to_thread(engine.plan, action, model, state=state)  # type: ignore[arg-type]
        if plan.refused:
            app.notify(
                f"{action} {model}: {plan.refusal}", title="Nothing to do", severity="warning"
            )
            return None
        outcome: Result | None = None
        result: Result
        while True:
            choice = await app.push_screen_wait(ConfirmActionScreen(plan, outcome))
            if choice is None:
                app.notify(f"{action} {model} cancelled: nothing was written", timeout=3)
                return None
            dry = choice == DRY_RUN
            app.notify(f"{'dry run of ' if dry else ''}{action} {model}: applying…", timeout=2)
            result = await asyncio.to_thread(engine.apply, plan, dry_run=dry)
            if dry and result.ok:
                outcome = result
                continue  # back to the modal, with the dry run's outcome shown
            break
        if result.status == "partial":
            retry_plan = plan.__class__(
                **{**plan.__dict__, "steps": result.not_done, "refusal": None}
            )
            again = await app.push_screen_wait(
                ConfirmActionScreen(
                    retry_plan,
                    result,
                    title=f"{action} {model} is HALF-DONE: retry the missing step(s)?",
                )
            )
            if again == CONFIRM:
                result = await asyncio.to_thread(engine.retry, result)
        app.notify(
            result_text(result),
            title=f"{action} {model}",
            severity=SEVERITY.get(result.status, "error"),
            timeout=10 if result.ok else 30,
        )
        return result
    finally:
        await asyncio.to_thread(engine.close)
        poll = getattr(app, "poll_now", None)
        if poll is not None:
            poll()  # the screen shows the new state
