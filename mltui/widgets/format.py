"""Short, honest renderings of values for tables and headers.

Missing values are "-" (never 0); everything here is pure and easy to test.
"""

from __future__ import annotations

from datetime import datetime

from mltui.durations import humanize_age


def num(value: float | None, digits: int = 1) -> str:
    """A number with ``digits`` decimals, "-" when unknown."""
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def ms(value: float | None) -> str:
    """Milliseconds, whole above 100 ms (the extra digit is noise there)."""
    if value is None:
        return "-"
    return f"{value:.0f}ms" if value >= 100 else f"{value:.1f}ms"


def pct(value: float | None, digits: int = 2) -> str:
    """A 0..1 ratio as a percentage."""
    if value is None:
        return "-"
    return f"{value * 100:.{digits}f}%"


def age(now: datetime, then: datetime | None) -> str:
    """How long ago ``then`` was, e.g. "4s", "2m"; "-" when unknown."""
    if then is None:
        return "-"
    return humanize_age((now - then).total_seconds())


def when(value: datetime | None) -> str:
    """A timestamp as "YYYY-MM-DD HH:MM" (UTC), "-" when unknown."""
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "-"


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells with an ellipsis."""
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
