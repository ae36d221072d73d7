"""`mltui --check`: one health report (text or JSON) and a monitoring-plugin exit code.

The rendering functions (:func:`render_text`, :func:`render_json`) are pure: a
FleetHealth and its FleetSnapshot in, a string or a dict out, so tests pin them
exactly. :func:`run_check` is the I/O around them: collect once, judge, print.

Exit codes (DESIGN.md §3): 0 OK · 1 WARNING · 2 CRITICAL · 3 UNKNOWN.
Nothing here imports textual; heavy libraries are imported only by the sources
the config names (FleetCollector builds them lazily).
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from mltui.config import Config
from mltui.fleet import FleetSnapshot, ModelState, finite
from mltui.health import FleetHealth, ModelHealth, Status, evaluate, firing_alerts

EXIT_CODES: dict[Status, int] = {"ok": 0, "warn": 1, "crit": 2, "unknown": 3}
EXIT_UNKNOWN = 3

STATUS_WORDS: dict[Status, str] = {"ok": "OK", "warn": "WARN", "crit": "CRIT", "unknown": "UNKNOWN"}
_LONG_WORDS: dict[Status, str] = {
    "ok": "OK",
    "warn": "WARNING",
    "crit": "CRITICAL",
    "unknown": "UNKNOWN",
}
# ANSI SGR colours of the status words (green, yellow, red, magenta).
_COLOURS: dict[Status, str] = {"ok": "32", "warn": "33", "crit": "31", "unknown": "35"}

WIDTH = 80


# ---------------------------------------------------------------- running


def exit_code(status: Status) -> int:
    return EXIT_CODES[status]


def run_check(
    config: Config,
    fmt: str = "text",
    models: Sequence[str] = (),
    *,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Collect once from every configured source, judge, print; return the exit code.

    ``models`` limits the report (and the polling) to those names; a name that is
    neither configured nor discovered is UNKNOWN (3) with one line on ``err``.
    """
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    wanted = list(dict.fromkeys(models))
    for warning in config.warnings:
        # On stderr, so the report on stdout (and its JSON) stays as it is.
        err.write(f"mltui: warning: {warning}\n")
    err.flush()

    if wanted and config.models:
        missing = [n for n in wanted if config.model(n) is None]
        if missing:
            return _fail(err, _unknown_models(missing, [m.name for m in config.models]))
        # Poll only what is asked for: no drift or cluster reads for other models.
        config = config.model_copy(
            update={"models": [m for m in config.models if m.name in wanted]}
        )

    try:
        snapshot = collect_once(config)
    except Exception as exc:  # noqa: BLE001 - a monitoring plugin ends with UNKNOWN, not a traceback
        from mltui.secrets import error_text

        return _fail(err, f"check failed: {error_text(exc)}")

    if wanted:
        present = {m.name for m in snapshot.models}
        missing = [n for n in wanted if n not in present]
        if missing:
            return _fail(err, _unknown_models(missing, sorted(present)))
        snapshot = FleetSnapshot(
            generated_at=snapshot.generated_at,
            sources=snapshot.sources,
            models=tuple(m for m in snapshot.models if m.name in wanted),
        )

    try:
        health = evaluate(config, snapshot)
        if fmt == "json":
            text = dump_json(render_json(health, snapshot))
        else:
            text = render_text(health, snapshot, color=use_color(out))
    except Exception as exc:  # noqa: BLE001 - exit 1 would read as WARNING to a monitoring plugin
        from mltui.secrets import error_text

        return _fail(err, f"check failed: {error_text(exc)}")
    _write(out, text)
    return exit_code(health.status)


def collect_once(config: Config) -> FleetSnapshot:
    """One poll of every configured source (drift included), each bounded by its deadline."""
    from mltui.collectors.collect import FleetCollector

    collector = FleetCollector(config)
    try:
        return collector.collect()
    finally:
        collector.close()


def _unknown_models(missing: Sequence[str], known: Sequence[str]) -> str:
    names = ", ".join(missing)
    plural = "s" if len(missing) > 1 else ""
    return f"unknown model{plural} {names} (known: {', '.join(known) or 'none'})"


def _fail(err: IO[str], message: str) -> int:
    err.write(f"mltui: {message}\n".replace("\r", " "))
    err.flush()
    return EXIT_UNKNOWN


def _write(out: IO[str], text: str) -> None:
    # Cron may run with a non-UTF-8 locale: an unencodable "≥" must not cost the report.
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:
        try:
            reconfigure(errors="replace")
        except (ValueError, OSError):
            pass
    out.write(text if text.endswith("\n") else text + "\n")
    out.flush()


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, never with NO_COLOR set (no-color.org) or TERM=dumb."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):
        return False


# ---------------------------------------------------------------- JSON


def _num(value: float | None) -> float | None:
    """A finite number rounded to hide float noise, or None (never NaN)."""
    f = finite(value)
    return None if f is None else round(f, 6)


def iso_z(moment: datetime) -> str:
    """UTC timestamp as 2026-11-29T12:00:00Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_json(health: FleetHealth, snapshot: FleetSnapshot) -> dict[str, Any]:
    """The --check JSON object exactly as DESIGN.md §3 and mltui/check_schema.json define it."""
    sources = {
        name: {
            "status": s.status,
            "error": s.error,
            "latency_ms": None if s.latency_ms is None else _num(round(s.latency_ms, 1)),
        }
        for name, s in snapshot.sources.items()
    }
    models = []
    for state in snapshot.models:
        model_health = health.models.get(state.name) or ModelHealth(state.name, "unknown")
        models.append(_model_json(state, model_health))
    return {
        "status": health.status,
        "generated_at": iso_z(snapshot.generated_at),
        "sources": sources,
        "models": models,
    }


def _model_json(state: ModelState, model_health: ModelHealth) -> dict[str, Any]:
    registry, rollout, drift = state.registry, state.rollout, state.drift
    stats = state.traffic.overall if state.traffic is not None else None
    latency = stats.latency_ms if stats is not None else None
    return {
        "name": state.name,
        "status": model_health.status,
        "versions": {
            "serving": state.serving_version,
            "champion": registry.champion if registry else None,
            "challenger": registry.challenger if registry else None,
        },
        "rollout": (
            None
            if rollout is None
            else {
                "kind": rollout.kind,
                "state": rollout.state,
                "canary_weight": rollout.canary_weight,
            }
        ),
        "latency_ms": {
            "p50": _num(latency.p50) if latency else None,
            "p95": _num(latency.p95) if latency else None,
            "p99": _num(latency.p99) if latency else None,
        },
        "rps": _num(stats.rps) if stats else None,
        "error_rate": _num(stats.error_rate) if stats else None,
        "drift": (
            None if drift is None else {"share": _num(drift.share), "drifted": list(drift.drifted)}
        ),
        "alerts": [{"name": a.name, "severity": a.severity} for a in firing_alerts(state)],
        "checks": [
            {
                "name": c.name,
                "status": c.status,
                "value": c.value if isinstance(c.value, str) else _num(c.value),
                "warn": _num(c.warn),
                "crit": _num(c.crit),
                "message": c.message,
            }
            for c in model_health.checks
        ],
    }


def dump_json(report: dict[str, Any]) -> str:
    # allow_nan=False: a NaN that slipped through is a bug to see, not invalid JSON to ship.
    return json.dumps(report, indent=2, allow_nan=False)


# ---------------------------------------------------------------- text


def clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` columns with a trailing "…"."""
    if len(text) <= width:
        return text
    return text[: max(0, width - 1)] + "…" if width > 0 else ""


def clip_middle(text: str, width: int) -> str:
    """Cut in the middle, keeping both ends: "churn-eu-west" and "churn-us-west" stay apart."""
    if len(text) <= width:
        return text
    if width < 5:
        return clip(text, width)
    tail = (width - 1) // 2
    head = width - 1 - tail
    return f"{text[:head]}…{text[len(text) - tail :]}"


def fmt_ms(value: float | None) -> str:
    v = finite(value)
    if v is None:
        return "-"
    if v >= 10_000:
        return f"{v / 1000:.0f} s"
    if v >= 1000:
        return f"{v / 1000:.1f} s"
    return f"{v:.0f} ms" if v >= 10 else f"{v:.1f} ms"


def fmt_rps(value: float | None) -> str:
    v = finite(value)
    if v is None:
        return "-"
    if v >= 10_000:
        return f"{v / 1000:.0f}k"
    if v >= 1000:
        return f"{v / 1000:.1f}k"
    if v >= 100 or v == 0:
        return f"{v:.0f}"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def fmt_pct(value: float | None) -> str:
    v = finite(value)
    if v is None:
        return "-"
    pct = v * 100
    if pct == 0:
        return "0%"
    if pct >= 10:
        return f"{pct:.0f}%"
    return f"{pct:.1f}%" if pct >= 1 else f"{pct:.2f}%"


def fmt_version(state: ModelState) -> str:
    """Serving version, "→v4" while a canary of v4 is in flight; "*" marks a serving
    version that is not the champion (the failing checks say more)."""
    serving = state.serving_version
    rollout = state.rollout
    if serving is None:
        return "-"
    champion = state.registry.champion if state.registry else None
    is_alias = rollout is not None and rollout.kind == "alias"
    mismatch = champion is not None and champion != serving and not is_alias
    text = f"v{serving}{'*' if mismatch else ''}"
    if rollout is not None and rollout.canary_version and rollout.canary_version != serving:
        text += f"→v{rollout.canary_version}"
    return text


def fmt_rollout(state: ModelState) -> str:
    """Rollout state, with the canary's share of traffic while one is in flight."""
    rollout = state.rollout
    if rollout is None:
        return "-"
    text: str = rollout.state
    if rollout.canary_weight is not None:
        text += f" {rollout.canary_weight}%"
    return text


_HEADERS = ("STATUS", "MODEL", "VERSION", "P95", "RPS", "ERRORS", "DRIFT", "ROLLOUT")
_RIGHT = {3, 4, 5, 6}  # numbers align right
_SEP = "  "


def _fit_widths(rows: list[list[str]], width: int) -> list[int]:
    """Natural column widths, then shrink MODEL and ROLLOUT (then VERSION) to fit ``width``."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADERS))]
    budget = width - len(_SEP) * (len(widths) - 1)
    # (column, floor) in the order they give way: MODEL keeps 16 before ROLLOUT shrinks.
    for column, floor in ((1, 16), (7, 12), (1, 10), (2, 6), (7, 8), (1, 6)):
        excess = sum(widths) - budget
        if excess <= 0:
            break
        widths[column] = max(floor, widths[column] - excess, len(_HEADERS[column]))
    return widths


def render_text(
    health: FleetHealth, snapshot: FleetSnapshot, *, color: bool = False, width: int = WIDTH
) -> str:
    """The report for humans: a summary line, the table, failing checks, a sources line."""

    def paint(status: Status, text: str) -> str:
        return f"\x1b[{_COLOURS[status]}m{text}\x1b[0m" if color else text

    lines: list[str] = []
    counts: dict[Status, int] = {"crit": 0, "unknown": 0, "warn": 0, "ok": 0}
    for model_health in health.models.values():
        counts[model_health.status] += 1
    tally = ", ".join(f"{n} {STATUS_WORDS[s].lower()}" for s, n in counts.items() if n)
    count = len(snapshot.models)
    when = iso_z(snapshot.generated_at).replace("T", " ")
    head = f"{count} model{'s' if count != 1 else ''}" + (f" ({tally})" if tally else "")
    word = _LONG_WORDS[health.status]
    left = clip(f"{word}  {head}", width - len(when) - 2)
    lines.append(
        paint(health.status, word)
        + left[len(word) :]
        + " " * (width - len(left) - len(when))
        + when
    )
    lines.append("")

    if not snapshot.models:
        lines.append("No models: none configured, and none discovered in MLflow.")
        lines.append("")
        lines.append(sources_line(snapshot, width))
        return "\n".join(lines) + "\n"

    rows: list[list[str]] = [list(_HEADERS)]
    statuses: list[Status] = []
    for state in snapshot.models:
        model_health = health.models.get(state.name) or ModelHealth(state.name, "unknown")
        stats = state.traffic.overall if state.traffic is not None else None
        statuses.append(model_health.status)
        rows.append(
            [
                STATUS_WORDS[model_health.status],
                state.name,
                fmt_version(state),
                fmt_ms(stats.latency_ms.p95) if stats else "-",
                fmt_rps(stats.rps) if stats else "-",
                fmt_pct(stats.error_rate) if stats else "-",
                fmt_pct(state.drift.share) if state.drift is not None else "-",
                fmt_rollout(state),
            ]
        )
    widths = _fit_widths(rows, width)
    for index, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            cell = clip_middle(cell, widths[i]) if i == 1 else clip(cell, widths[i])
            padded = cell.rjust(widths[i]) if i in _RIGHT else cell.ljust(widths[i])
            if i == 0 and index > 0:
                padded = paint(statuses[index - 1], cell) + " " * (widths[0] - len(cell))
            cells.append(padded)
        lines.append(_SEP.join(cells).rstrip())

    failing = [mh for mh in health.models.values() if mh.failing]
    if failing:
        lines.append("")
        lines.append("Failing checks:")
        for model_health in failing:
            lines.append(f"  {clip_middle(model_health.name, width - 2)}")
            for check in model_health.failing:
                word = STATUS_WORDS[check.status]
                label = f"    {word:<7}  {check.name}: "
                wrapped = textwrap.wrap(
                    check.message or check.status,
                    width=width,
                    initial_indent=" " * len(label),
                    subsequent_indent=" " * 13,
                ) or [" " * len(label)]
                lines.append(
                    f"    {paint(check.status, word)}{label[4 + len(word) :]}"
                    + wrapped[0][len(label) :]
                )
                lines.extend(wrapped[1:])

    lines.append("")
    lines.append(sources_line(snapshot, width))
    return "\n".join(lines) + "\n"


def sources_line(snapshot: FleetSnapshot, width: int = WIDTH) -> str:
    """E.g. "sources ok: prometheus, mlflow; error: kubernetes; not configured: alertmanager".

    Grouped by status to fit one line; the errors themselves are in the failing checks
    and the JSON report.
    """
    groups: dict[str, list[str]] = {"ok": [], "error": [], "not_configured": []}
    for name, source in snapshot.sources.items():
        groups[source.status].append(name)
    labels = {"ok": "ok", "error": "error", "not_configured": "not configured"}
    parts = [f"{labels[k]}: {', '.join(v)}" for k, v in groups.items() if v]
    return clip("sources " + "; ".join(parts), width)


__all__ = [
    "EXIT_CODES",
    "clip",
    "clip_middle",
    "dump_json",
    "exit_code",
    "iso_z",
    "render_json",
    "render_text",
    "run_check",
    "sources_line",
    "use_color",
]
