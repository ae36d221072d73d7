"""`mltui promote|rollback|retrain`: exit codes, confirmation, --dry-run, --format json.

Most cases run the real click command in-process (CliRunner: stdin is not a TTY);
the confirmation prompts run the real `mltui` process on a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from mltui.cli import main
from tests.support import manifests as m

MODEL = "churn-classifier"


def _write_config(tmp_path: Path, kube: Any, uri: str, *, protected: bool = False) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[kubernetes]
kubeconfig = "{kube.kubeconfig}"
timeout = "3s"

[mlflow]
tracking_uri = "{uri}"
timeout = "2s"

[[models]]
name = "churn"
registered_model = "{MODEL}"
target = {{ kind = "Deployment", name = "churn", canary = "churn-canary", protected = {str(protected).lower()} }}
"""
    )
    return path


def _setup(kube: Any) -> None:
    kube.put(m.deployment("churn", model=MODEL, version="3"))
    kube.put(m.canary_deployment("churn", model=MODEL, version="4"))


def _canary_replicas(kube: Any) -> int:
    return int(kube.get("Deployment", "ml", "churn-canary")["spec"]["replicas"])


def test_exit_codes(kube: Any, mlflow_store: Any, audit_log: Any, tmp_path: Path) -> None:
    _setup(kube)
    config = str(_write_config(tmp_path, kube, mlflow_store.tracking_uri))
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, [*args, "--config", config], catch_exceptions=False)

    # No TTY, no --yes: the plan is printed, nothing is applied (1).
    out = run("promote", "churn")
    assert out.exit_code == 1, out.output
    assert "copy the canary's pod template" in out.output and "--yes" in out.output
    assert _canary_replicas(kube) == 1

    # Usage errors (3): unknown model, read-only, --to-revision on promote.
    assert run("promote", "nope").exit_code == 3
    out = run("promote", "churn", "--read-only", "--yes")
    assert out.exit_code == 3 and "read-only" in out.output
    assert run("promote", "churn", "--to-revision", "2").exit_code == 3
    assert run("retrain", "churn", "--yes").exit_code == 3  # no retrain configured

    # --dry-run --format json: validated, nothing written (0).
    out = run("promote", "churn", "--dry-run", "--format", "json")
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["result"]["status"] == "dry_run" and doc["plan"]["action"] == "promote"
    assert _canary_replicas(kube) == 1

    # --yes: applied (0); then nothing left to promote (1).
    out = run("promote", "churn", "--yes")
    assert out.exit_code == 0, out.output
    assert "promote churn: done" in out.output
    assert _canary_replicas(kube) == 0
    assert run("promote", "churn", "--yes").exit_code == 1

    # A 403 is a failure (2) that names the permission.
    kube.deny("patch", "deployments")
    out = run("rollback", "churn", "--yes", "--format", "json")
    assert out.exit_code == 2, out.output
    doc = json.loads(out.output)
    assert doc["result"]["status"] == "failed" and 'verb "patch"' in doc["result"]["error"]


def _run_on_tty(
    args: list[str], answer: str, env: dict[str, str], timeout: float = 60.0
) -> tuple[int, str]:
    """Run `mltui ARGS` on a pseudo-terminal, type ``answer`` at the prompt, return (code, output)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltui", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    answered = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
                if not answered and (b"[y/N]" in output or b"Type the model name" in output):
                    os.write(master, answer.encode() + b"\r")
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=10)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    return code, output.decode("utf-8", "replace")


def test_tty_prompts(kube: Any, mlflow_store: Any, audit_log: Any, tmp_path: Path) -> None:
    """On a terminal: "n" cancels (1); a protected target wants the model name; typing it applies (0)."""
    _setup(kube)
    env = {**os.environ, "XDG_STATE_HOME": str(audit_log.path.parent.parent)}
    plain = str(_write_config(tmp_path, kube, mlflow_store.tracking_uri))
    code, out = _run_on_tty(["promote", "churn", "--config", plain], "n", env)
    assert code == 1, out
    assert "cancelled" in out and _canary_replicas(kube) == 1

    protected_dir = tmp_path / "protected"
    protected_dir.mkdir()
    protected = str(_write_config(protected_dir, kube, mlflow_store.tracking_uri, protected=True))
    code, out = _run_on_tty(["promote", "churn", "--config", protected], "yes", env)
    assert code == 1 and _canary_replicas(kube) == 1, out  # "yes" is not the model name
    code, out = _run_on_tty(["promote", "churn", "--config", protected], "churn", env)
    assert code == 0, out
    assert _canary_replicas(kube) == 0
    assert [r["status"] for r in audit_log.read() if r["phase"] == "result"] == ["applied"]
