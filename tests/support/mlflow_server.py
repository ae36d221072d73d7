"""Run a real ``mlflow server`` subprocess over a store built by :mod:`tests.support.mlflow_data`.

Used by the ``mlflow_server`` fixture; tests that need a server of their own (one
they may write to, or kill) can call :func:`start_mlflow_server` directly and must
call :meth:`MlflowServer.stop`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.mlflow_data import MlflowData
from tests.support.procs import free_port

START_TIMEOUT = 90.0
"""Seconds to wait for /health; generous because the machine has 2 shared cores."""


@dataclass
class MlflowServer:
    """A running ``mlflow server``: its URL, the data it serves and its process."""

    url: str
    port: int
    data: MlflowData
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in: float
    """Seconds from spawn to a healthy /health."""

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL the whole process group (mlflow CLI + uvicorn): a crashed server."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Terminate gracefully, then kill whatever is left of the process group."""
        if self.alive:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # The mlflow CLI forwards SIGTERM to uvicorn but can outlive it; sweep the group.
        self._signal(signal.SIGKILL)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            pass

    def _signal(self, sig: int) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass


def start_mlflow_server(data: MlflowData, log_dir: Path) -> MlflowServer:
    """Start ``mlflow server`` on a free port over ``data``'s sqlite file; wait until healthy.

    One uvicorn worker and no job runner: the machine has two cores shared by the
    whole suite. The server gets its own process group so teardown (or a test that
    simulates a crash) can end the CLI process and its uvicorn child together.
    """
    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    artifacts = data.artifacts_dir
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        data.tracking_uri,
        "--default-artifact-root",
        str(artifacts),
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {
        **os.environ,
        # The job runner (huey consumer) is a second process we do not need.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"mlflow-server-{port}.log"
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
            cwd=str(data.root),
        )
    server = MlflowServer(url, port, data, process, log_path, 0.0)
    deadline = started + START_TIMEOUT
    while True:
        if not server.alive:
            pytest.fail(
                f"mlflow server exited with code {process.returncode} before becoming healthy "
                f"(install it with `pip install 'mlflow>=3,<4'`):\n{server.log()}",
                pytrace=False,
            )
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.perf_counter() > deadline:
            server.stop()
            pytest.fail(
                f"mlflow server not healthy after {START_TIMEOUT:g}s:\n{server.log()}",
                pytrace=False,
            )
        time.sleep(0.1)
    server.started_in = time.perf_counter() - started
    return server
