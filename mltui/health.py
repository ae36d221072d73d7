"""The one health evaluator: FleetSnapshot -> checks with ok/warn/crit/unknown.

Both the TUI and `mltui --check` call :func:`evaluate`, so they always agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from mltui.config import Config
from mltui.fleet import FleetSnapshot

Status = Literal["ok", "warn", "crit", "unknown"]

# Overall status rule (DESIGN.md §3): crit > unknown > warn > ok.
_RANK: dict[Status, int] = {"ok": 0, "warn": 1, "unknown": 2, "crit": 3}


def worst(statuses: Iterable[Status]) -> Status:
    """Overall status: crit if any crit, else unknown if any unknown, else warn, else ok."""
    result: Status = "ok"
    for status in statuses:
        if _RANK[status] > _RANK[result]:
            result = status
    return result


@dataclass(frozen=True)
class Check:
    name: str
    """latency_p95 | error_rate | drift_share | rollout | version | alerts | source:<name>"""
    status: Status
    value: float | str | None = None
    warn: float | None = None
    crit: float | None = None
    message: str = ""


@dataclass(frozen=True)
class ModelHealth:
    name: str
    status: Status
    checks: tuple[Check, ...] = ()

    @property
    def failing(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status != "ok")


@dataclass(frozen=True)
class FleetHealth:
    status: Status
    models: Mapping[str, ModelHealth] = field(default_factory=dict)


def evaluate(config: Config, snapshot: FleetSnapshot) -> FleetHealth:
    """Judge every model of ``snapshot`` against the config's SLOs. (Filled in by the --check issue.)"""
    models = {m.name: ModelHealth(name=m.name, status="unknown") for m in snapshot.models}
    return FleetHealth(status=worst(h.status for h in models.values()), models=models)
