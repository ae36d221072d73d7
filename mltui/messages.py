"""Textual messages that workers post to the app: small dataclasses (STYLE.md #4).

Per-tick messages implement ``can_replace`` so that, if the UI falls behind,
a backlog of polls collapses to the newest one instead of being replayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from textual.message import Message

from mltui.fleet import FleetSnapshot, TrafficSeries
from mltui.health import FleetHealth

PollKind = Literal["fast", "drift"]
"""fast: Prometheus, MLflow, Kubernetes, Alertmanager. drift: the slow drift source."""


@dataclass
class FleetCollected(Message):
    """A poll finished: the merged snapshot and its health verdicts."""

    snapshot: FleetSnapshot
    health: FleetHealth
    kind: PollKind = "fast"

    def can_replace(self, message: Message) -> bool:
        # A newer snapshot of the same kind supersedes an older, unprocessed one.
        return isinstance(message, FleetCollected) and message.kind == self.kind


@dataclass
class CollectFailed(Message):
    """The collector itself raised (a bug or a broken install): shown, never fatal."""

    error: str
    kind: PollKind = "fast"


@dataclass
class SeriesLoaded(Message):
    """Chart series for one model and window, fetched on demand by the model screen."""

    model: str
    window_s: float
    series: TrafficSeries

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SeriesLoaded) and message.model == self.model
