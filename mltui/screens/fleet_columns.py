"""The fleet table's columns: what each shows, how it sorts, and which drop first.

Pure functions of a :class:`~mltui.fleet.ModelState` and its
:class:`~mltui.health.ModelHealth`, so the screen only decides *where* things go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mltui.fleet import ModelState
from mltui.health import ModelHealth, Status
from mltui.widgets.format import ms, num, pct
from mltui.widgets.sparkline import sparkline

HEALTH_RANK: dict[str, int] = {"crit": 0, "unknown": 1, "warn": 2, "ok": 3}
"""Sort order of health: worst first."""

HEALTH_LABEL: dict[str, str] = {
    "ok": "● ok",
    "warn": "▲ warn",
    "crit": "✖ crit",
    "unknown": "? unkn",
}
"""A symbol *and* a word, so health reads without colour (NO_COLOR, monochrome)."""

SPARK_WIDTH = 10


@dataclass(frozen=True)
class Row:
    """One model with its verdict: what a column function receives."""

    model: ModelState
    health: ModelHealth | None

    @property
    def status(self) -> Status:
        return self.health.status if self.health is not None else "unknown"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    priority: int
    """Lower stays longer when the terminal is narrow."""
    text: Callable[[Row], str]
    sort: Callable[[Row], Any]
    source: str | None = None
    """The source the value comes from: its cell is dimmed when that source is stale."""
    numeric: bool = False


def _rollout(row: Row) -> str:
    r = row.model.rollout
    if r is None:
        return "-"
    if r.canary_weight is not None:
        return f"{r.state} {r.canary_weight}%"
    return r.state


def _versions(row: Row) -> str:
    reg = row.model.registry
    if reg is None:
        return "-"
    champ, chall = reg.champion or "-", reg.challenger
    return f"{champ}/{chall}" if chall else champ


def _p95(row: Row) -> float | None:
    t = row.model.traffic
    return t.overall.latency_ms.p95 if t is not None else None


def _rps(row: Row) -> float | None:
    t = row.model.traffic
    return t.overall.rps if t is not None else None


def _err(row: Row) -> float | None:
    t = row.model.traffic
    return t.overall.error_rate if t is not None else None


def _drift(row: Row) -> float | None:
    d = row.model.drift
    return d.share if d is not None else None


def _firing(row: Row) -> int:
    return sum(1 for a in row.model.alerts if a.state == "active" and not a.silenced)


def _p95_text(row: Row) -> str:
    t = row.model.traffic
    if t is not None and t.overall.latency_ms.p95 is None:
        if t.overall.latency_ms.mean is not None:
            # Counter-only servers (triton, torchserve) give a mean, never a p95.
            return f"{ms(t.overall.latency_ms.mean)} avg"
        if t.overall.rps is not None and t.overall.rps == 0:
            return "no traffic"  # series exist, nobody calls: not a latency of 0
    return ms(_p95(row))


def _alerts_text(row: Row) -> str:
    n = _firing(row)
    return str(n) if n else "-"


def _none_last(value: float | None) -> tuple[bool, float]:
    """Sort key putting unknown values after every known one."""
    return (value is None, value if value is not None else 0.0)


COLUMNS: tuple[Column, ...] = (
    Column(
        "health", "health", 6, 1, lambda r: HEALTH_LABEL[r.status], lambda r: HEALTH_RANK[r.status]
    ),
    Column("name", "model", 16, 0, lambda r: r.model.name, lambda r: r.model.name.lower()),
    Column(
        "serving",
        "serving",
        7,
        7,
        lambda r: r.model.serving_version or "-",
        lambda r: _version_key(r.model.serving_version),
        source="kubernetes",
    ),
    Column("versions", "champ/chal", 10, 9, _versions, lambda r: _versions(r), source="mlflow"),
    Column("rollout", "rollout", 15, 4, _rollout, lambda r: (_rollout(r),), source="kubernetes"),
    Column(
        "p95",
        "p95",
        10,
        2,
        _p95_text,
        lambda r: _none_last(_p95(r)),
        source="prometheus",
        numeric=True,
    ),
    Column(
        "trend",
        "p95 trend",
        SPARK_WIDTH,
        10,
        lambda r: sparkline(r.model.traffic.p95_series, SPARK_WIDTH) if r.model.traffic else "",
        lambda r: _none_last(_p95(r)),
        source="prometheus",
    ),
    Column(
        "rps",
        "rps",
        7,
        6,
        lambda r: num(_rps(r), 1),
        lambda r: _none_last(_rps(r)),
        source="prometheus",
        numeric=True,
    ),
    Column(
        "errors",
        "err %",
        7,
        3,
        lambda r: pct(_err(r)),
        lambda r: _none_last(_err(r)),
        source="prometheus",
        numeric=True,
    ),
    Column(
        "drift",
        "drift",
        6,
        8,
        lambda r: pct(_drift(r), 0),
        lambda r: _none_last(_drift(r)),
        source="drift",
        numeric=True,
    ),
    Column(
        "alerts",
        "alerts",
        6,
        5,
        _alerts_text,
        lambda r: _firing(r),
        source="alertmanager",
        numeric=True,
    ),
)

COLUMN_KEYS = tuple(c.key for c in COLUMNS)


def _version_key(version: str | None) -> tuple[bool, int, str]:
    """Numeric versions sort as numbers ("10" after "9"); unknown last."""
    if version is None:
        return (True, 0, "")
    return (False, int(version), "") if version.isdigit() else (False, 0, version)


def column(key: str) -> Column:
    return next(c for c in COLUMNS if c.key == key)


def fit_columns(available: int, name_width: int) -> list[Column]:
    """The columns that fit ``available`` cells, dropping the lowest priorities first.

    Each column costs its width plus DataTable's cell padding of 2. The result is
    in display order.
    """
    chosen: set[str] = set()
    used = 0
    for col in sorted(COLUMNS, key=lambda c: c.priority):
        width = (name_width if col.key == "name" else col.width) + 2
        if used + width <= available or col.key == "name":
            chosen.add(col.key)
            used += width
    return [c for c in COLUMNS if c.key in chosen]


def matches(row: Row, query: str) -> bool:
    """Substring filter over the row's words; a leading "!" inverts it."""
    query = query.strip()
    invert = query.startswith("!")
    needle = query[1:].strip().lower() if invert else query.lower()
    if not needle:
        return True
    hay = " ".join(
        [
            row.model.name,
            row.model.registered_model,
            row.status,
            _rollout(row),
            row.model.serving_version or "",
            *(a.name for a in row.model.alerts),
        ]
    ).lower()
    return (needle in hay) != invert


def ordered(rows: Sequence[Row], sort_key: str, reverse: bool) -> list[Row]:
    """Rows sorted by a column, ties broken by name so the order is stable."""
    col = column(sort_key)
    by_name = sorted(rows, key=lambda r: r.model.name.lower())
    if col.numeric or sort_key == "trend":
        # Unknown values stay last whichever way the sort goes.
        known = [r for r in by_name if col.sort(r)[0] is False] if col.key != "alerts" else by_name
        unknown = [r for r in by_name if r not in known]
        return sorted(known, key=col.sort, reverse=reverse) + unknown
    return sorted(by_name, key=col.sort, reverse=reverse)
