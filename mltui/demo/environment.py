"""Start and stop the demo backends: store, model server, traffic, Prometheus.

:class:`DemoEnvironment` is what ``mltui --demo`` runs and what the tests drive:
``start()`` trains the models on first use, starts the processes (all on
127.0.0.1, each in its own process group), writes ``mltui.toml`` and returns the
parsed :class:`~mltui.config.Config`; ``stop()`` ends every process it started.

Start-up is mostly Python imports (MLflow, pandas, scikit-learn) and, on the first
run, MLflow's schema migrations; so everything that can overlap does: the model
server and the traffic generator start with training and wait for it (and for the
server's port), Prometheus starts meanwhile, and mltui itself imports MLflow in
the background for its first poll.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mltui.config import Config, parse_config
from mltui.demo import catalog
from mltui.demo.config_template import render
from mltui.demo.errors import DemoError
from mltui.demo.processes import Child, wait_for
from mltui.demo.prometheus import PrometheusServer, prometheus_binary, start_prometheus
from mltui.demo.workspace import Workspace, WorkspaceLock

TRAIN_TIMEOUT_S = 300.0
SERVER_TIMEOUT_S = 120.0


__all__ = ["DemoEnvironment", "DemoError"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class DemoEnvironment:
    """The running demo fleet of one workspace."""

    def __init__(self, ws: Workspace, *, log: Callable[[str], None] = _stderr) -> None:
        self.ws = ws
        self.log = log
        self.server: Child | None = None
        self.traffic: Child | None = None
        self.prometheus: PrometheusServer | None = None
        self.server_url: str | None = None
        self.config: Config | None = None
        self._children: list[Child] = []
        self.traffic_started: float | None = None
        self._lock: WorkspaceLock | None = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> DemoEnvironment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, *, reset: bool = False) -> Config:
        """Everything up; the config mltui should run with."""
        started = time.monotonic()
        if self._lock is None or not self._lock.held:
            # Held until stop(): a second demo on this workspace fails fast instead of
            # wiping this one's run/ directory (logs, port file, Prometheus' data).
            self._lock = self.ws.acquire()
        _prewarm()
        if reset:
            self.log(f"mltui demo: wiping {self.ws.root}")
            self.ws.reset()
        needs_training = not self.ws.is_ready()
        if needs_training:
            self.ws.reset()  # a half-built store (interrupted run) is rebuilt
        run = self.ws.run_dir
        if run.exists():
            shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True, exist_ok=True)
        training = self._spawn_training() if needs_training else None
        # The server and the traffic generator import their libraries while training
        # runs, then wait for READY / the port file; Prometheus starts meanwhile.
        port_file = self._spawn_server(wait_ready=TRAIN_TIMEOUT_S if training else 0.0)
        self.traffic = self._spawn(
            "traffic",
            [
                sys.executable,
                "-m",
                "mltui.demo.traffic",
                "--workspace",
                str(self.ws.root),
                "--port-file",
                str(port_file),
            ],
        )
        prometheus_url: str | None = None
        if prometheus_binary():
            try:
                # A static target: the server binds its port first thing. (A file_sd
                # target set later would wait for Prometheus' 5 s target-reload tick.)
                target = self._wait_bound(port_file.with_suffix(".addr"))
                self.prometheus = start_prometheus(run / "prometheus", [target])
                self._children.append(self.prometheus.child)
                prometheus_url = self.prometheus.url
            except RuntimeError as exc:
                self.log(f"mltui demo: {exc}; reading the server's /metrics directly instead")
        if training is not None:
            self._wait_training(training)
        self.server_url = self._wait_server(port_file)
        self.traffic_started = time.monotonic()  # it was waiting for the port file
        text = render(
            self.ws,
            prometheus_url=prometheus_url,
            scrape_url=None if prometheus_url else f"{self.server_url}/metrics",
        )
        self.ws.config_path.write_text(text, encoding="utf-8")
        self.config = parse_config(text, str(self.ws.config_path))
        how = "Prometheus at " + prometheus_url if prometheus_url else "direct /metrics scrapes"
        self.log(
            f"mltui demo: {len(catalog.FLEET)} models served at {self.server_url}, metrics via {how} "
            f"(ready in {time.monotonic() - started:.1f}s; config: {self.ws.config_path})"
        )
        return self.config

    def stop(self) -> None:
        """Stop what this environment started (newest first), then free the workspace;
        safe to call twice."""
        for child in reversed(self._children):
            child.stop()
        self._children.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # ------------------------------------------------------------ steps

    def _spawn(self, name: str, argv: list[str]) -> Child:
        child = Child(name, argv, self.ws.run_dir / f"{name}.log", cwd=self.ws.root)
        self._children.append(child)
        return child

    def _spawn_training(self) -> Child:
        self.log("mltui demo: training the demo models (first run only, ~20 s)…")
        self.ws.root.mkdir(parents=True, exist_ok=True)
        self.ws.run_dir.mkdir(parents=True, exist_ok=True)
        return self._spawn(
            "train", [sys.executable, "-m", "mltui.demo.train", "--workspace", str(self.ws.root)]
        )

    def _wait_training(self, child: Child) -> None:
        """Training done and READY written; DemoError with its log otherwise."""
        try:
            code = child.popen.wait(TRAIN_TIMEOUT_S)
        except Exception:
            child.stop()
            raise
        self._children.remove(child)
        if code != 0 or not self.ws.is_ready():
            raise DemoError(f"training the demo models failed (exit {code}):\n{child.log_tail()}")

    def _spawn_server(self, wait_ready: float = 0.0) -> Path:
        """Start the model server; the file it will write its port to.

        ``wait_ready`` > 0: training is running, the server waits that long for it.
        """
        port_file = self.ws.run_dir / "server.port"
        self.server = self._spawn(
            "server",
            [
                sys.executable,
                "-m",
                "mltui.demo.server",
                "--workspace",
                str(self.ws.root),
                "--port-file",
                str(port_file),
                "--addr-file",
                str(port_file.with_suffix(".addr")),
                "--wait-ready",
                str(wait_ready),
            ],
        )
        return port_file

    def _wait_bound(self, addr_file: Path) -> str:
        """ "127.0.0.1:PORT" once the server bound its socket; DemoError if it dies first."""
        server = self.server
        assert server is not None
        wait_for(lambda: addr_file.exists() or not server.alive(), SERVER_TIMEOUT_S, 0.02)
        if not addr_file.exists():
            raise DemoError(f"the demo model server did not start:\n{server.log_tail()}")
        return f"127.0.0.1:{addr_file.read_text(encoding='utf-8').strip()}"

    def _wait_server(self, port_file: Path) -> str:
        """The server's base URL once it serves; DemoError with its log if it dies."""
        server = self.server
        assert server is not None
        wait_for(lambda: port_file.exists() or not server.alive(), SERVER_TIMEOUT_S)
        if not port_file.exists():
            raise DemoError(f"the demo model server did not start:\n{server.log_tail()}")
        return f"http://127.0.0.1:{port_file.read_text(encoding='utf-8').strip()}"

    # ------------------------------------------------------------ readiness

    def wait_live(self, config: Config, timeout: float = 60.0) -> list[str]:
        """Poll until every model has latency, rps and versions (at most ``timeout`` s).

        Returns the models still missing something (empty when all are live). Drift is
        not polled here (it is slow); the inference log only has to have rows.
        """
        from mltui.collectors.collect import FleetCollector

        collector = FleetCollector(config)
        deadline = time.monotonic() + timeout
        missing: list[str] = [m.name for m in config.models]
        try:
            fast = [n for n in collector.source_names if n != "drift"]
            while time.monotonic() < deadline:
                if config.prometheus is not None and self.traffic_started is not None:
                    # Prometheus' rate() divides by the whole range: until the range is
                    # full of traffic it reads low. Wait that out (bounded by timeout).
                    age = time.monotonic() - self.traffic_started
                    if age < config.prometheus.rate_window:
                        time.sleep(min(1.0, config.prometheus.rate_window - age))
                        continue
                snapshot = collector.collect(only=fast)
                missing = [
                    m.name
                    for m in snapshot.models
                    if not _live(m) or not any(self.ws.inference_dir(m.name).glob("*.parquet"))
                ]
                if not missing:
                    return []
                time.sleep(1.0)
            return missing
        finally:
            collector.close()


def _prewarm() -> None:
    """Import in the background what mltui's first poll needs (MLflow takes seconds).

    It runs while the demo's processes start, so the first snapshot is not also
    waiting for imports. Best effort: a failure here shows up, properly reported,
    in the poll that needs the module.
    """

    def load() -> None:
        with contextlib.suppress(Exception):
            import mlflow.store.model_registry.sqlalchemy_store  # noqa: F401
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
            import mlflow.tracking  # noqa: F401

    threading.Thread(target=load, name="mltui-demo-prewarm", daemon=True).start()


def _live(model: Any) -> bool:
    traffic = model.traffic
    return bool(
        traffic is not None
        and traffic.overall.rps
        and traffic.overall.latency_ms.p95 is not None
        and model.registry is not None
        and model.registry.champion is not None
    )
