"""The contract every collector keeps: errors are values, time is bounded.

A source is constructed from the :class:`~mltui.config.Config`, then polled with
the models it should cover. ``fetch`` does the I/O and may raise; ``poll`` turns
the outcome, whatever it is, into a :class:`SourceResult` that never raises.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar, Generic, TypeVar

from mltui.config import Config, ModelConfig
from mltui.fleet import SourceStatus
from mltui.secrets import error_text, redact

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


class SourceError(Exception):
    """An expected failure, phrased for the user (no traceback needed)."""


@dataclass(frozen=True)
class SourceResult(Generic[T]):
    """One poll of one source."""

    status: SourceStatus
    values: Mapping[str, T] = field(default_factory=dict)
    """model name -> what the source knows about it."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """model name -> why this source has nothing for that model (others may be fine)."""


class Source(ABC, Generic[T]):
    """A headless collector for one kind of backend."""

    name: ClassVar[str]

    def __init__(self, config: Config) -> None:
        self.config = config
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def timeout(self) -> float:
        """Per-request timeout in seconds."""
        return 5.0

    @property
    def deadline(self) -> float:
        """How long the orchestrator waits for a whole poll before calling it timed out."""
        return self.timeout + 1.0

    def count_request(self, n: int = 1) -> None:
        with self._lock:
            self.requests += n

    @abstractmethod
    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, T], dict[str, str]]:
        """Do the I/O: (values by model name, errors by model name). May raise."""

    def poll(self, models: Sequence[ModelConfig]) -> SourceResult[T]:
        """``fetch`` with timing and request counting; never raises."""
        before = self.requests
        started = time.perf_counter()
        try:
            values, errors = self.fetch(models)
            status = SourceStatus(
                name=self.name,
                status="ok",
                latency_ms=(time.perf_counter() - started) * 1000,
                fetched_at=utcnow(),
                requests=self.requests - before,
            )
            # Per-model errors often quote a server's answer, which may echo a credential.
            scrubbed = {name: redact(text) for name, text in errors.items()}
            return SourceResult(status=status, values=values, errors=scrubbed)
        except Exception as exc:  # errors are values: nothing escapes into the UI
            message = str(exc) if isinstance(exc, SourceError) else error_text(exc)
            status = SourceStatus(
                name=self.name,
                status="error",
                error=error_text(SourceError(message)).removeprefix("SourceError: "),
                latency_ms=(time.perf_counter() - started) * 1000,
                fetched_at=None,
                requests=self.requests - before,
            )
            return SourceResult(status=status)

    def close(self) -> None:
        """Release clients and pools."""
