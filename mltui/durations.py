"""Durations written as in Prometheus and Go: "500ms", "5s", "15m", "1h30m", "7d"."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str) -> float:
    """Seconds in ``text``; ValueError with the accepted forms when it is not a duration."""
    if not isinstance(text, str):
        raise ValueError('a duration is a string such as "500ms", "5s", "15m" or "1h30m"')
    s = text.strip()
    pos, total = 0, 0.0
    for match in _PART.finditer(s):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not s or pos != len(s):
        raise ValueError(
            f'"{text}" is not a duration; use a number and a unit (ms, s, m, h, d, w), '
            'e.g. "500ms", "5s", "15m", "1h30m"'
        )
    if total <= 0:
        raise ValueError(f'"{text}" must be longer than zero')
    return total


def format_duration(seconds: float) -> str:
    """The shortest exact spelling Prometheus accepts, e.g. 90 -> "1m30s", 0.5 -> "500ms"."""
    ms = round(seconds * 1000)
    if ms % 1000:
        return f"{ms}ms"
    rest = ms // 1000
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out or "0s"


def humanize_age(seconds: float | None) -> str:
    """Compact age for status bars: "4s", "3m", "2h", "5d"."""
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
