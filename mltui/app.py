"""The Textual app: bindings, the refresh loop, and the factory the CLI and tests share.

The refresh loop (DESIGN.md §1, STYLE.md #2-#3): ``collector.collect()`` runs in a
daemon thread (so quitting never waits for a hanging source) that also merges in the
latest drift result and evaluates health, then ends in a
:class:`~mltui.messages.FleetCollected` message; the UI thread only applies it. The
next poll is armed with ``set_timer`` only when the last one finished, so polls never
overlap. Drift runs on its own slower cadence in its own thread, so a slow drift
computation never delays the fast sources. A failed poll never clears data.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.timer import Timer

from mltui.config import Config
from mltui.fleet import FleetSnapshot
from mltui.health import FleetHealth, evaluate
from mltui.messages import CollectFailed, FleetCollected, PollKind
from mltui.screens.palette import FleetCommands
from mltui.secrets import error_text

DRIFT_MIN_INTERVAL = 60.0
"""Drift is recomputed at most this often (seconds), whatever the refresh interval."""

POLL_SLOW_S = 1.0
"""A fast poll shows "polling…" only once it has taken this long: a quick poll flips
nothing on screen (each flip is a status-line rewrite an SSH link pays for)."""

ACTIONS: tuple[str, ...] = ("promote", "rollback", "retrain")
"""Destructive actions: hidden and refused when the config is read_only."""


class Collector(Protocol):
    """What the app needs of a collector (FleetCollector, or a recorded one in tests)."""

    @property
    def source_names(self) -> list[str]: ...

    def source(self, name: str) -> Any: ...

    def collect(self, only: Iterable[str] | None = None) -> FleetSnapshot: ...

    def close(self) -> None: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


class MltuiApp(App[int]):
    """mltui's terminal UI."""

    TITLE = "mltui"
    CSS_PATH = "mltui.tcss"
    ENABLE_COMMAND_PALETTE = True
    COMMANDS = App.COMMANDS | {FleetCommands}

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark", "help", "Help", id="help"),
        Binding("r", "refresh", "Refresh", id="refresh"),
        Binding("space", "toggle_pause", "Pause", id="pause"),
        Binding("colon", "command_palette", "Commands", show=False, id="palette"),
    ]

    # repaint=False: these are data for the screens' watchers. A repainting reactive on
    # the App repaints the whole screen (~11 KB at 80x24) on every change, twice per
    # poll, which an idle TUI over SSH pays for (benchmarks/README.md, idle).
    snapshot: reactive[FleetSnapshot | None] = reactive(None, always_update=True, repaint=False)
    """The newest merged snapshot (fast sources plus the latest drift result)."""
    health: reactive[FleetHealth | None] = reactive(None, always_update=True, repaint=False)
    """Verdicts for ``snapshot``, from the one health evaluator."""
    paused: reactive[bool] = reactive(False, repaint=False)
    """True while polling is paused (space)."""
    polling: reactive[bool] = reactive(False, repaint=False)
    """True while a fast poll is in flight."""
    poll_slow: reactive[bool] = reactive(False, repaint=False)
    """True once the poll in flight has taken longer than ``POLL_SLOW_S``."""
    poll_error: reactive[str | None] = reactive(None, repaint=False)
    """Why the last poll itself failed (the collector raised), if it did."""

    def __init__(
        self,
        config: Config,
        collector: Collector,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll: bool = True,
    ) -> None:
        super().__init__()
        self.config = config
        self.collector = collector
        self.clock = clock
        self._poll_enabled = poll
        self._timer: Timer | None = None
        self._slow_timer: Timer | None = None
        self._again = False
        """A refresh was asked for while a poll ran: poll again when it ends."""
        self._drift_snapshot: FleetSnapshot | None = None
        """The latest drift poll's snapshot (written by the poll thread)."""
        self._fast_snapshot: FleetSnapshot | None = None
        """The latest fast poll's snapshot, unmerged (written by the poll thread)."""
        self._merge_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._drift_running = False
        self._drift_timer: Timer | None = None
        self.polls_started = 0
        self.max_concurrent_polls = 0
        """Tests read these two to prove polls never overlap."""
        self._in_flight = 0
        if config.keys:
            self.set_keymap(dict(config.keys))

    # ------------------------------------------------------------- lifecycle

    def on_mount(self) -> None:
        if self.config.theme:
            if self.config.theme in self.available_themes:
                self.theme = self.config.theme
            else:
                self.notify(f'unknown theme "{self.config.theme}"', severity="warning")
        from mltui.screens.fleet import FleetScreen

        self.push_screen(FleetScreen())
        if self._poll_enabled and self.has_sources:
            # After the first frame: nothing the collector does can delay painting.
            self.call_after_refresh(self.poll_now)

    def on_unmount(self) -> None:
        try:
            self.collector.close()
        except Exception:  # noqa: BLE001 - closing is best effort on the way out
            pass

    @property
    def has_sources(self) -> bool:
        return bool(self.collector.source_names)

    @property
    def fast_sources(self) -> list[str]:
        return [n for n in self.collector.source_names if n != "drift"]

    # ------------------------------------------------------------- refresh loop

    def poll_now(self) -> None:
        """Start a fast poll now, or right after the one in flight."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self.polling:
            self._again = True
            return
        if not self.fast_sources:
            self._after_fast_poll()
            return
        self.polling = True
        # Started with the poll, stopped when it ends: only a slow poll is shown.
        self._slow_timer = self.set_timer(POLL_SLOW_S, self._mark_slow)
        self._collect(self.fast_sources, "fast")

    def _mark_slow(self) -> None:
        self.poll_slow = self.polling

    def _collect(self, only: list[str], kind: PollKind) -> None:
        """Run one poll in a daemon thread that ends in a message.

        Not a Textual thread worker: those run in the event loop's default executor,
        which ``asyncio.run`` waits for on the way out, so ``q`` during a hanging poll
        would block until the source timed out. A daemon thread is simply left behind.
        Polls still never overlap: ``poll_now`` starts one only when none is in flight.
        """
        threading.Thread(
            target=self._collect_in_thread,
            args=(only, kind),
            name=f"mltui-poll-{kind}",
            daemon=True,
        ).start()

    def _collect_in_thread(self, only: list[str], kind: PollKind) -> None:
        if kind == "fast":
            with self._count_lock:
                self._in_flight += 1
                self.polls_started += 1
                self.max_concurrent_polls = max(self.max_concurrent_polls, self._in_flight)
        message: FleetCollected | CollectFailed
        try:
            snapshot = self.collector.collect(only=only)
            # Overlay and evaluate here, off the UI thread (at 1,000 models they take a
            # while). Under the lock, and posted under it, so whichever poll finishes
            # last posts the merge of both polls' newest data.
            with self._merge_lock:
                if kind == "drift":
                    self._drift_snapshot = snapshot
                    base = self._fast_snapshot or snapshot
                else:
                    self._fast_snapshot = snapshot
                    base = snapshot
                merged = overlay_drift(base, self._drift_snapshot)
                message = FleetCollected(merged, evaluate(self.config, merged), kind)
                self._post(message)
        except Exception as exc:  # errors are values: the UI shows it, the data stays
            self._post(CollectFailed(error_text(exc), kind))
        finally:
            if kind == "fast":
                with self._count_lock:
                    self._in_flight -= 1

    def _post(self, message: FleetCollected | CollectFailed) -> None:
        """Post from a poll thread; after the app has gone (quit mid-poll) nothing."""
        try:
            self.post_message(message)
        except RuntimeError:  # the event loop closed while this poll ran
            pass

    def on_fleet_collected(self, message: FleetCollected) -> None:
        # Already merged and evaluated in the poll thread: the UI thread only applies it.
        if message.kind == "drift":
            self._drift_running = False
            self._arm_drift()
        else:
            self.poll_error = None
        self.health = message.health
        self.snapshot = message.snapshot
        if message.kind == "fast":
            self._after_fast_poll()

    def on_collect_failed(self, message: CollectFailed) -> None:
        self.poll_error = message.error
        self.notify(message.error, title="poll failed", severity="error")
        if message.kind == "drift":
            self._drift_running = False
            self._arm_drift()
        else:
            self._after_fast_poll()

    def _after_fast_poll(self) -> None:
        if self._slow_timer is not None:
            self._slow_timer.stop()
            self._slow_timer = None
        self.polling = False
        self.poll_slow = False
        if self._again:
            self._again = False
            self.poll_now()
            return
        if not self.paused and self._poll_enabled:
            self._timer = self.set_timer(self.config.refresh, self.poll_now)
        if "drift" in self.collector.source_names and self._drift_snapshot is None:
            self._start_drift()  # first drift poll after the first fast one

    def _start_drift(self) -> None:
        if self._drift_running or "drift" not in self.collector.source_names:
            return
        self._drift_running = True
        self._collect(["drift"], "drift")

    def _arm_drift(self) -> None:
        if self._drift_timer is not None:
            self._drift_timer.stop()
        if not self.paused and self._poll_enabled:
            self._drift_timer = self.set_timer(self.drift_interval, self._start_drift)

    @property
    def drift_interval(self) -> float:
        """Seconds between drift polls."""
        return max(DRIFT_MIN_INTERVAL, 4 * self.config.refresh)

    def fresh_for(self, source: str) -> float:
        """Seconds a source's data counts as fresh: two of its poll intervals.

        The status bar shows a source's data age only past this (k9s-like: an age
        that is always "a few seconds" is noise, and each tick costs terminal bytes).
        """
        return 2 * (self.drift_interval if source == "drift" else self.config.refresh)

    # ------------------------------------------------------------- actions

    def action_refresh(self) -> None:
        """Poll now (also while paused: a one-off refresh)."""
        self.poll_now()

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            for timer in (self._timer, self._drift_timer):
                if timer is not None:
                    timer.stop()
            self._timer = self._drift_timer = None
            self.notify("polling paused (space resumes)", timeout=2)
        else:
            self.notify("polling resumed", timeout=2)
            self.poll_now()
            self._arm_drift()

    def action_help(self) -> None:
        from mltui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def open_model(self, name: str) -> None:
        """Show one model's screen (from the fleet table or the palette)."""
        from mltui.screens.fleet import FleetScreen
        from mltui.screens.model import ModelScreen

        while not isinstance(self.screen, FleetScreen) and len(self.screen_stack) > 2:
            self.pop_screen()
        self.push_screen(ModelScreen(name))

    def go_fleet(self) -> None:
        from mltui.screens.fleet import FleetScreen

        while not isinstance(self.screen, FleetScreen) and len(self.screen_stack) > 2:
            self.pop_screen()

    def request_action(self, action: str, model: str) -> None:
        """Entry point for promote / rollback / retrain (the actions issue plugs in here)."""
        if self.config.read_only:
            self.notify("read-only: actions are disabled", severity="warning")
            return
        try:
            from mltui.actions.tui import start_action
        except ImportError:
            self.notify(f"{action} is not available yet", severity="warning")
            return
        start_action(self, action, model)

    def state_text(self) -> str:
        """Poll state for the status bar."""
        if self.paused:
            return "PAUSED"
        if self.polling and self.poll_slow:
            return "polling…"
        return "live" if self.snapshot is not None else "starting…"


def overlay_drift(base: FleetSnapshot, drift: FleetSnapshot | None) -> FleetSnapshot:
    """``base`` with every model's drift (and the drift source status) from ``drift``.

    Fast and drift polls run independently; this keeps each one's newest data
    whichever finished last.
    """
    if drift is None or base is drift:
        return base
    sources = dict(base.sources)
    if "drift" in drift.sources:
        sources["drift"] = drift.sources["drift"]
    models = []
    for model in base.models:
        other = drift.model(model.name)
        if other is None:
            models.append(model)
            continue
        errors = {k: v for k, v in model.errors.items() if k != "drift"}
        if "drift" in other.errors:
            errors["drift"] = other.errors["drift"]
        stale = (model.stale - {"drift"}) | (other.stale & {"drift"})
        models.append(replace(model, drift=other.drift, errors=errors, stale=stale))
    return replace(base, sources=sources, models=tuple(models))


def make_app(
    config: Config,
    collector: Collector | None = None,
    *,
    clock: Callable[[], datetime] | None = None,
    poll: bool = True,
) -> MltuiApp:
    """The app on ``config``; tests pass a real or recorded collector and a frozen clock."""
    if collector is None:
        # FleetCollector imports each source lazily, on its first poll (in a worker).
        from mltui.collectors.collect import FleetCollector

        collector = FleetCollector(config)
    return MltuiApp(config, collector, clock=clock or utcnow, poll=poll)


def run_app(config: Config, app: MltuiApp | None = None, *, headless: bool = False) -> int:
    """Run the TUI until the user quits; the process exit code.

    ``app`` and ``headless`` let tests run a prepared app without a terminal.
    """
    app = app or make_app(config)
    result = app.run(headless=headless)
    # After an unhandled exception run() returns None and sets return_code to 1:
    # a crash must not exit 0.
    return result if isinstance(result, int) else (app.return_code or 0)


STYLESHEET = Path(__file__).with_name("mltui.tcss")
