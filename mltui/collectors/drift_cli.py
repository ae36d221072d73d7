"""`mltui drift MODEL [--html PATH] [--format text|json]`: one model's drift, now.

Exit codes:
  0  drift was computed (or read from drift_query) and printed, drifted or not
     (`mltui --check` is the command that judges it against drift_share);
  2  the computation failed (bad or missing data, MLflow unreachable, ...):
     the reason is on stderr;
  3  usage or config error: a bad flag, a bad config, an unknown model, or a
     model without [models.drift].

The JSON form is one object: {"model", "share", "drifted", "reference_rows",
"current_rows", "computed_at", "note", "html", "features": [{"column", "method",
"score", "threshold", "drifted", "column_type"}, ...]} with features most drifted first.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from mltui.config import Config
from mltui.fleet import Drift

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 2, 3


def run_drift(
    config: Config, model_name: str, html_path: str | None = None, fmt: str = "text"
) -> int:
    """Compute ``model_name``'s drift, print it, optionally save the HTML report; the exit code."""
    from mltui.collectors.base import SourceError
    from mltui.collectors.drift import DriftSource

    model = config.model(model_name)
    if model is None:
        known = ", ".join(m.name for m in config.models) or "none configured"
        _err(f'unknown model "{model_name}" (models: {known})')
        return EXIT_USAGE
    if model.drift is None:
        _err(f'model "{model_name}" has no [models.drift] table in the config')
        return EXIT_USAGE

    source = DriftSource(config)
    try:
        html = None
        if html_path is not None:
            # The export computes and caches, so the poll below is a cache hit.
            try:
                html = str(source.export_html(model, html_path))
            except SourceError as exc:
                _err(f"{model_name}: {exc}")
                return EXIT_FAILED
        result = source.poll([model])
    finally:
        source.close()
    drift = result.values.get(model_name)
    if drift is None:
        _err(f"{model_name}: {result.errors.get(model_name) or result.status.error or 'no result'}")
        return EXIT_FAILED
    if fmt == "json":
        print(json.dumps(as_json(model_name, drift, html), indent=2))
    else:
        print(as_text(model_name, drift, html))
    return EXIT_OK


def as_json(model: str, drift: Drift, html: str | None = None) -> dict[str, Any]:
    return {
        "model": model,
        "share": drift.share,
        "drifted": list(drift.drifted),
        "reference_rows": drift.reference_rows,
        "current_rows": drift.current_rows,
        "computed_at": drift.computed_at.isoformat() if drift.computed_at else None,
        "note": drift.note,
        "html": html,
        "features": [
            {
                "column": f.column,
                "method": f.method,
                "score": f.score,
                "threshold": f.threshold,
                "drifted": f.drifted,
                "column_type": f.column_type,
            }
            for f in drift.features
        ],
    }


def as_text(model: str, drift: Drift, html: str | None = None) -> str:
    share = "-" if drift.share is None else f"{drift.share:.0%}"
    lines = [
        f"{model}: drifted share {share} ({len(drift.drifted)} of {len(drift.features)} features)"
    ]
    if drift.reference_rows is not None:
        lines.append(f"reference {drift.reference_rows} rows, current {drift.current_rows} rows")
    if drift.note:
        lines.append(drift.note)
    if drift.features:
        width = max(7, *(len(f.column) for f in drift.features))
        lines.append("")
        lines.append(f"{'feature':<{width}}  drifted  {'score':>10}  {'threshold':>9}  method")
        for f in drift.features:
            lines.append(
                f"{f.column:<{width}}  {'yes' if f.drifted else 'no':<7}  {_num(f.score):>10}  "
                f"{_num(f.threshold):>9}  {f.method} ({f.column_type or '-'})"
            )
    if html:
        lines.append("")
        lines.append(f"HTML report: {html}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _err(message: str) -> None:
    print(f"mltui: {message}", file=sys.stderr)
