"""The fleet table's p95 sparkline, kept off the Prometheus poll's critical path.

A sparkline needs the window's history: one range query of ``histogram_quantile``
over every model of a query group. At 1,000 models that query costs about a
second of server time on an idle 2-core machine, several on a loaded one, and
grows with its number of points — while the poll's instant queries take a few
tenths of a second. So the history is cached per group and refreshed on its own
cadence:

* the range is fetched at most once per sparkline step (window / points), in the
  background on the source's thread pool, with its own (longer) timeout;
* a fetch starts only after the poll's instant queries are answered (it never
  competes with them), and the poll does not wait for it — except for a group's
  very first fill, which gets a short grace (``FIRST_WAIT``) so a small fleet has
  its sparkline on the first frame;
* each poll shows the cached history, trimmed to the window, plus its own p95 as the
  newest point (``with_live_point``), so the line stays current between fetches.

A failed range fetch is no model's error (the sparkline is decoration, and the
instant queries already report a broken server): the old history stays, the error
is kept in :attr:`History.error`, and the next try waits a step.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field

from mltui.fleet import Point
from mltui.secrets import error_text

FIRST_WAIT = 0.5
"""Seconds a poll waits, after its instant queries, for a group's *first* history."""

Key = tuple[str, ...]
"""A model's selector values (its row in the group's query results)."""

Lines = Mapping[Key, tuple[Point, ...]]
"""Selector values -> the model's p95 history (ms), oldest first."""


@dataclass
class History:
    """One query group's cached p95 history and its refresh state."""

    lines: Lines = field(default_factory=dict)
    filled: bool = False
    """True once a range fetch has succeeded (``lines`` may still be empty: no traffic)."""
    tried_at: float = -math.inf
    """Wall-clock end of the last range fetch started (for the refresh cadence)."""
    pending: Future[Lines] | None = None
    error: str | None = None
    """Why the last range fetch failed (None after a success)."""


class Sparklines:
    """Per query group (keyed by its range query text): cached history, one fetch at a time.

    Thread-safe: polls and finishing fetches may run on different threads.
    """

    def __init__(self, window_s: float, points: int) -> None:
        self.window_s = window_s
        self.step_s = max(1.0, float(math.ceil(window_s / points)))
        """Seconds between range points, and the least time between two range fetches."""
        self._lock = threading.Lock()
        self._groups: dict[str, History] = {}

    def history(self, query: str) -> History:
        """The group's state (created empty on first sight)."""
        with self._lock:
            return self._groups.setdefault(query, History())

    def _harvest(self, history: History) -> None:
        """Move a finished fetch's outcome into ``history`` (call with the lock held)."""
        future = history.pending
        if future is None or not future.done():
            return
        history.pending = None
        if future.cancelled():
            history.error = "cancelled"
            return
        exc = future.exception()
        if exc is None:
            history.lines, history.filled, history.error = future.result(), True, None
        else:
            history.error = str(exc) or error_text(exc)

    def refresh(self, query: str, now: float, start: Callable[[], Future[Lines]]) -> bool:
        """Start a range fetch (``start()``) when one is due; True when it started.

        Due: nothing in flight and a step has passed since the last try (a failed try
        counts too, so a broken or overloaded server is not asked again every poll).
        """
        with self._lock:
            history = self._groups.setdefault(query, History())
            self._harvest(history)
            if history.pending is not None or now - history.tried_at < self.step_s:
                return False
            history.tried_at = now
            history.pending = start()
            return True

    def wait_first(self, queries: Iterable[str], timeout: float) -> None:
        """Wait up to ``timeout`` for the in-flight first fills of these groups."""
        with self._lock:
            futures = [
                h.pending
                for q in queries
                if (h := self._groups.get(q)) is not None and not h.filled and h.pending
            ]
        if futures and timeout > 0:
            wait(futures, timeout=timeout)

    def wait_all(self, timeout: float) -> bool:
        """Wait for every fetch in flight (tests, clean shutdowns); True when none is left."""
        with self._lock:
            futures = [h.pending for h in self._groups.values() if h.pending is not None]
        done, not_done = wait(futures, timeout=timeout) if futures else (set(), set())
        return not not_done

    def lines(self, query: str, now: float) -> Lines:
        """The group's cached lines, each trimmed to the window ending at ``now``."""
        with self._lock:
            history = self._groups.setdefault(query, History())
            self._harvest(history)
            cached = history.lines
        oldest = now - self.window_s
        return {key: tuple(p for p in points if p[0] >= oldest) for key, points in cached.items()}

    def keep_only(self, queries: Iterable[str]) -> None:
        """Forget groups no longer polled (the fleet or its filter changed)."""
        wanted = set(queries)
        with self._lock:
            for query in [q for q in self._groups if q not in wanted]:
                del self._groups[query]


def with_live_point(line: tuple[Point, ...], now: float, p95_ms: float | None) -> tuple[Point, ...]:
    """The cached line plus this poll's own p95 as its newest point (when newer)."""
    if p95_ms is None or (line and line[-1][0] >= now):
        return line
    return (*line, (now, p95_ms))


__all__ = ["FIRST_WAIT", "History", "Lines", "Sparklines", "with_live_point"]
