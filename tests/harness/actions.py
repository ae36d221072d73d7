"""Fixtures for the action tests: a private audit log and state directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltui.actions.audit import AuditLog


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AuditLog:
    """$XDG_STATE_HOME in tmp_path, so the engine's default audit log lands here."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = AuditLog()
    assert log.path == tmp_path / "state" / "mltui" / "audit.jsonl"
    return log
