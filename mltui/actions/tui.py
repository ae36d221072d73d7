"""The hook the TUI calls for promote / rollback / retrain (``MltuiApp.request_action``).

Kept free of Textual imports, like the rest of ``mltui.actions``: the confirm modal
and the worker that drives it live in :mod:`mltui.screens.confirm`, imported here
only when an action is requested.
"""

from __future__ import annotations

from typing import Any


def start_action(app: Any, action: str, model: str) -> None:
    """Plan → confirm in a modal → apply → notify → refresh, in a worker of ``app``."""
    from mltui.screens.confirm import start_action_flow

    start_action_flow(app, action, model)
