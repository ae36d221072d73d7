"""The help screen: every binding of every screen, with its id and current key."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from mltui.config import Config


def binding_rows(config: Config) -> list[tuple[str, str, str, str]]:
    """(where, key, what, id) for every binding, with config [keys] remaps applied.

    Action bindings are left out in read_only mode, as they are everywhere else.
    """
    from mltui.app import ACTIONS, MltuiApp
    from mltui.screens.fleet import FleetScreen
    from mltui.screens.model import ModelScreen

    rows: list[tuple[str, str, str, str]] = []
    for where, bindings in (
        ("global", MltuiApp.BINDINGS),
        ("fleet", FleetScreen.BINDINGS),
        ("model", ModelScreen.BINDINGS),
    ):
        for b in bindings:
            if not isinstance(b, Binding) or b.id is None:
                continue
            if config.read_only and b.id in ACTIONS:
                continue
            key = config.keys.get(b.id, b.key)
            rows.append((where, display_key(key), b.description, b.id))
    rows.append(("global", "ctrl+p", "Command palette", "-"))
    return rows


_NAMES = {
    "question_mark": "?",
    "slash": "/",
    "colon": ":",
    "escape": "esc",
    "right_square_bracket": "]",
    "left_square_bracket": "[",
    "exclamation_mark": "!",
}


def display_key(key: str) -> str:
    return ", ".join(_NAMES.get(k.strip(), k.strip()) for k in key.split(","))


class HelpScreen(ModalScreen[None]):
    """Every key, where it works, and its binding id (for [keys] in the config)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", id="help_close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Static(
                '[b]mltui keys[/b] — remap any of them in the config: [keys] id = "key"'.replace(
                    "[keys]", "\\[keys]"
                )
            )
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "key", "what", "id")
        config: Config = self.app.config  # type: ignore[attr-defined]
        table.add_rows(binding_rows(config))
        table.focus()
