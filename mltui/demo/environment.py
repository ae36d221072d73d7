"""Start and stop the demo backends: store, model server, traffic, Prometheus.

:class:`DemoEnvironment` is what ``mltui --demo`` runs and what the tests drive:
``start()`` trains the models on first use, starts the processes (all on
127.0.0.1, each in its own process group), writes ``mltui.toml`` and returns the
parsed :class:`~mltui.config.Config`; ``stop()`` ends every process it started.
"""

from __future__ import annotations

import shutil
import sys
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
        if reset:
            self.log(f"mltui demo: wiping {self.ws.root}")
            self.ws.reset()
        if not self.ws.is_ready():
            self.ws.reset()  # a half-built store (interrupted run) is rebuilt
            self._train()
        run = self.ws.run_dir
        if run.exists():
            shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True, exist_ok=True)
        # Prometheus starts while the server loads its models (file_sd target set later).
        port_file = self._spawn_server()
        prometheus_url: str | None = None
        if prometheus_binary():
            try:
                self.prometheus = start_prometheus(run / "prometheus", None)
                self._children.append(self.prometheus.child)
                prometheus_url = self.prometheus.url
            except RuntimeError as exc:
                self.log(f"mltui demo: {exc}; reading the server's /metrics directly instead")
        self.server_url = self._wait_server(port_file)
        if self.prometheus is not None:
            self.prometheus.set_targets([self.server_url.split("//", 1)[1]])
        self.traffic_started = time.monotonic()
        self.traffic = self._spawn(
            "traffic",
            [
                sys.executable,
                "-m",
                "mltui.demo.traffic",
                "--workspace",
                str(self.ws.root),
                "--url",
                self.server_url,
            ],
        )
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

    def _train(self) -> None:
        self.log("mltui demo: training the demo models (first run only, ~20 s)…")
        self.ws.root.mkdir(parents=True, exist_ok=True)
        self.ws.run_dir.mkdir(parents=True, exist_ok=True)
        child = self._spawn(
            "train", [sys.executable, "-m", "mltui.demo.train", "--workspace", str(self.ws.root)]
        )
        try:
            code = child.popen.wait(TRAIN_TIMEOUT_S)
        except Exception:
            child.stop()
            raise
        self._children.remove(child)
        if code != 0 or not self.ws.is_ready():
            raise DemoError(f"training the demo models failed (exit {code}):\n{child.log_tail()}")

    def _spawn_server(self) -> Path:
        """Start the model server; the file it will write its port to."""
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
            ],
        )
        return port_file

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


def _live(model: Any) -> bool:
    traffic = model.traffic
    return bool(
        traffic is not None
        and traffic.overall.rps
        and traffic.overall.latency_ms.p95 is not None
        and model.registry is not None
        and model.registry.champion is not None
    )
