"""Command palette provider: jump to any model or screen (ctrl+p, or ":" as in k9s)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider


class FleetCommands(Provider):
    """ "model <name>" for every model, plus the screens and the poll controls."""

    def _commands(self) -> list[tuple[str, Callable[[], Any], str]]:
        app: Any = self.app
        commands: list[tuple[str, Callable[[], Any], str]] = [
            ("fleet", app.go_fleet, "Go to the fleet overview"),
            ("help", app.action_help, "Show every key binding"),
            ("refresh", app.action_refresh, "Poll every source now"),
            ("pause / resume", app.action_toggle_pause, "Stop or restart polling"),
        ]
        snapshot = getattr(app, "snapshot", None)
        names = [m.name for m in snapshot.models] if snapshot is not None else []
        names += [m.name for m in app.config.models if m.name not in names]
        for name in names:
            commands.append(
                (f"model {name}", partial(app.open_model, name), f"Open {name}'s screen")
            )
        return commands

    async def discover(self) -> Hits:
        for text, callback, help_text in self._commands():
            yield DiscoveryHit(text, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, callback, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), callback, help=help_text)
