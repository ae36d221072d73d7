"""The audit log: one JSON line per attempted action, durable before the write.

``$XDG_STATE_HOME/mltui/audit.jsonl``. Each apply writes an ``attempt`` line (who,
when, where, the plan) and fsyncs it *before* the first write to any system, then a
``result`` line with the same ``id`` after. A crash in between leaves an attempt
without a result: exactly what an investigator needs to know.

Every line is one ``os.write`` on a file opened with ``O_APPEND`` (atomic for one
writer per line, even with several mltui processes) followed by ``fsync``, and
goes through :func:`mltui.secrets.redact`: no secret ever reaches the file.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mltui.actions.plan import Plan, Result
from mltui.locations import audit_log_path
from mltui.secrets import redact


def local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Who:
    """Who is acting, as the audit log and the last-action annotation record it."""

    user: str
    host: str
    kube_context: str | None = None
    kube_user: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "host": self.host,
            "kube_context": self.kube_context,
            "kube_user": self.kube_user,
        }


def who_am_i(kube_context: str | None = None, kube_user: str | None = None) -> Who:
    return Who(local_user(), socket.gethostname(), kube_context, kube_user)


class AuditLog:
    """Appends attempt/result lines to one JSONL file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else audit_log_path()

    def _append(self, record: dict[str, Any]) -> None:
        line = redact(json.dumps(record, sort_keys=True, default=str, ensure_ascii=False)) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            data = line.encode("utf-8")
            written = os.write(fd, data)
            if written != len(data):  # pragma: no cover - a full disk
                raise OSError(f"audit log: short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)

    def attempt(self, plan: Plan, who: Who, *, dry_run: bool) -> str:
        """Record that ``plan`` is about to be applied; returns the id the result will carry."""
        action_id = uuid.uuid4().hex
        self._append(
            {
                "id": action_id,
                "phase": "attempt",
                "time": now_iso(),
                **who.to_json(),
                "action": plan.action,
                "model": plan.model,
                "target": plan.target,
                "dry_run": dry_run,
                "plan": plan.to_json(),
            }
        )
        return action_id

    def result(self, action_id: str, result: Result, who: Who) -> None:
        """Record how the attempt ``action_id`` ended."""
        self._append(
            {
                "id": action_id,
                "phase": "result",
                "time": now_iso(),
                **who.to_json(),
                "action": result.plan.action,
                "model": result.plan.model,
                "target": result.plan.target,
                "dry_run": result.dry_run,
                "status": result.status,
                "result": result.to_json(),
                "error": result.error,
                # After a re-plan, the plan that was applied differs from the attempt's.
                "plan": result.plan.to_json() if result.replans else None,
            }
        )

    def read(self) -> list[dict[str, Any]]:
        """Every record, oldest first (tests and `tail`-like views)."""
        if not self.path.exists():
            return []
        return [
            json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line.strip()
        ]
