"""Drift results on disk, so a new process reuses them.

Every ``mltui --check`` is a new process: with only an in-memory cache, a cron
job would start a worker and run Evidently on every run even when the files have
not changed. Results (and data errors, which are just as deterministic) are kept
under ``$XDG_CACHE_HOME/mltui/drift/<key>.json``, ``key`` being the sha256 of the
inputs' identities and the settings (``DriftSource._job``), so a hit needs neither
pandas nor Evidently, only this module's ``json``.

The cache is an optimisation: an unreadable, corrupt or foreign entry is a miss, a
failed write is ignored, and only the newest ``MAX_ENTRIES`` entries are kept.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from mltui.fleet import Drift, FeatureDrift, finite

FORMAT = 1
"""Bumped when the stored shape changes; entries of another format are misses."""

MAX_ENTRIES = 256
"""Entries kept (newest first by mtime); each is a few KB."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mltui/drift``, read on every call so tests can point it elsewhere."""
    from mltui.locations import cache_dir as base

    return base() / "drift"


def _path(key: str) -> Path:
    if not key or not all(c in "0123456789abcdef" for c in key):
        raise ValueError(f"not a cache key: {key!r}")  # never a path from outside
    return cache_dir() / f"{key}.json"


def load(key: str) -> Drift | str | None:
    """The stored result for ``key`` (a Drift, or the error text), or None on a miss."""
    try:
        with open(_path(key), encoding="utf-8") as fh:
            entry = json.load(fh)
        if entry.get("format") != FORMAT or entry.get("key") != key:
            return None
        if "error" in entry:
            return str(entry["error"])
        return from_json(entry["drift"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def save(key: str, result: Drift | str) -> None:
    """Store ``result`` atomically (temp file + os.replace); failures are ignored."""
    entry: dict[str, Any] = {"format": FORMAT, "key": key}
    if isinstance(result, str):
        entry["error"] = result
    else:
        entry["drift"] = to_json(result)
    try:
        target = _path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(entry, fh)
            os.replace(tmp, target)  # readers see the old entry or the new one, never half
        except BaseException:
            os.unlink(tmp)
            raise
        prune(target.parent)
    except (OSError, ValueError):
        pass  # a read-only or full disk costs a recomputation next time, nothing more


def prune(directory: Path, keep: int = MAX_ENTRIES) -> None:
    """Delete all but the ``keep`` newest entries (and temp files a crash left)."""
    try:
        entries = []
        for item in os.scandir(directory):
            if item.name.endswith(".json") and item.is_file():
                entries.append((item.stat().st_mtime, item.path))
    except OSError:
        return
    if len(entries) <= keep:
        return
    entries.sort(reverse=True)
    for _, path in entries[keep:]:
        try:
            os.unlink(path)
        except OSError:
            pass


def to_json(drift: Drift) -> dict[str, Any]:
    """A Drift as plain JSON values."""
    return {
        "share": drift.share,
        "drifted": list(drift.drifted),
        "features": [
            {
                "column": f.column,
                "method": f.method,
                "score": f.score,
                "threshold": f.threshold,
                "drifted": f.drifted,
                "column_type": f.column_type,
                "bins": list(f.bins),
                "reference_share": list(f.reference_share),
                "current_share": list(f.current_share),
            }
            for f in drift.features
        ],
        "reference_rows": drift.reference_rows,
        "current_rows": drift.current_rows,
        "computed_at": drift.computed_at.isoformat() if drift.computed_at else None,
        "note": drift.note,
    }


def from_json(data: dict[str, Any]) -> Drift:
    """The inverse of :func:`to_json`."""
    computed_at = data.get("computed_at")
    return Drift(
        share=finite(data["share"]),
        drifted=tuple(str(c) for c in data["drifted"]),
        features=tuple(feature_from_dict(f) for f in data["features"]),
        reference_rows=_int(data.get("reference_rows")),
        current_rows=_int(data.get("current_rows")),
        computed_at=datetime.fromisoformat(computed_at) if computed_at else None,
        note=data.get("note"),
    )


def feature_from_dict(f: dict[str, Any]) -> FeatureDrift:
    """One feature's verdict from plain values (the worker's result or the disk cache)."""
    return FeatureDrift(
        column=str(f["column"]),
        method=str(f["method"]),
        score=finite(f["score"]),
        threshold=finite(f["threshold"]),
        drifted=bool(f["drifted"]),
        column_type=f.get("column_type"),
        bins=tuple(str(b) for b in f.get("bins", ())),
        reference_share=tuple(float(x) for x in f.get("reference_share", ())),
        current_share=tuple(float(x) for x in f.get("current_share", ())),
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)
