"""Unicode block sparklines that fit in one DataTable cell."""

from __future__ import annotations

from collections.abc import Sequence

from mltui.fleet import Point, finite

BLOCKS = "▁▂▃▄▅▆▇█"


def resample(values: Sequence[float | None], width: int) -> list[float | None]:
    """``values`` squeezed (bucket max) or kept to at most ``width`` points."""
    if len(values) <= width:
        return list(values)
    out: list[float | None] = []
    for i in range(width):
        lo = i * len(values) // width
        hi = max(lo + 1, (i + 1) * len(values) // width)
        bucket = [v for v in values[lo:hi] if v is not None]
        # The max keeps a latency spike visible when points are merged.
        out.append(max(bucket) if bucket else None)
    return out


def sparkline(points: Sequence[Point], width: int = 10) -> str:
    """A sparkline of the points' values; gaps (missing values) are spaces.

    The scale runs from the series' minimum to its maximum, so a flat series
    draws a flat low line rather than nothing.
    """
    values = resample([finite(v) for _, v in points], width)
    known = [v for v in values if v is not None]
    if not known:
        return ""
    lo, hi = min(known), max(known)
    span = hi - lo
    chars = []
    for v in values:
        if v is None:
            chars.append(" ")
        elif span <= 0:
            chars.append(BLOCKS[0])
        else:
            chars.append(BLOCKS[min(len(BLOCKS) - 1, int((v - lo) / span * len(BLOCKS)))])
    return "".join(chars)
