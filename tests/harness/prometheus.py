"""A real Prometheus server with history written beforehand by promtool.

Fixtures
--------
``prometheus_factory`` (session)
    ``make(openmetrics: str | None = None) -> PrometheusServer``: backfills the text
    (default: the standard fleet of :mod:`tests.support.prom_fleet`) into a fresh
    data dir with ``promtool tsdb create-blocks-from openmetrics`` and starts
    ``prometheus`` on 127.0.0.1 with a free port. Every server it made is stopped
    at the end of the session. Use it for tests that stop or kill the server.
``prometheus_fleet`` (session)
    One server holding the standard fleet (model names and expected values in
    :mod:`tests.support.prom_fleet`; ``server.expected``). Shared: never stop it.
``prometheus_config_toml`` (session)
    ``[prometheus]`` + ``[[models]]`` TOML text pointing at ``prometheus_fleet``.

If the ``prometheus`` or ``promtool`` binary is missing the fixture fails with the
install hint (Debian package ``prometheus``); it never skips.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import free_port, require_binary, stop_process, tail, wait_ready
from tests.support.prom_fleet import MODELS_TOML, Expected, expected, fleet_openmetrics

HINT = "install Debian package prometheus (apt-get install -y prometheus; brew install prometheus)"

# No scrape jobs: all data comes from the backfilled blocks.
CONFIG = "global:\n  scrape_interval: 15s\n  evaluation_interval: 15s\n"


@dataclass
class PrometheusServer:
    """A running (or stopped) ``prometheus`` process over a backfilled data dir."""

    root: Path
    port: int
    data_start: int | None = None
    """First backfilled sample time (unix s); None for a hand-written dataset."""
    data_end: int | None = None
    expected: dict[str, Expected] = field(default_factory=dict)
    """For the standard fleet: model (or "model:track") -> expected values."""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "prometheus.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (or restart after :meth:`stop`) on the same port and data dir."""
        if self.running:
            return
        binary = require_binary("prometheus", HINT)
        (self.root / "prometheus.yml").write_text(CONFIG)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.root / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.data_dir}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    # Backfilled blocks must never age out during a test run.
                    "--storage.tsdb.retention.time=100y",
                    "--web.enable-lifecycle",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_ready(f"{self.url}/-/ready", self.proc, self.log)

    def stop(self) -> None:
        """Terminate and wait (kill after 10 s). Requests then get "connection refused"."""
        stop_process(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.running and self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def query(self, promql: str, time: float | None = None) -> list[dict[str, Any]]:
        """Instant query straight over HTTP (for harness tests): the ``result`` list."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        response = httpx.get(f"{self.url}/api/v1/query", params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def scalar(self, promql: str, time: float | None = None) -> float:
        """The single value of an instant query that yields exactly one series."""
        result = self.query(promql, time)
        assert len(result) == 1, f"{promql} gave {len(result)} series: {result}"
        return float(result[0]["value"][1])


def backfill(openmetrics: str, root: Path) -> None:
    """Write ``openmetrics`` as TSDB blocks into ``root/data`` with promtool."""
    promtool = require_binary("promtool", HINT)
    source = root / "history.om"
    source.write_text(openmetrics)
    (root / "data").mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(root / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"promtool backfill failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    source.unlink()


@pytest.fixture(scope="session")
def prometheus_factory() -> Iterator[Callable[..., PrometheusServer]]:
    """``make(openmetrics=None) -> PrometheusServer`` (started). Default data: the fleet."""
    servers: list[PrometheusServer] = []
    with tempfile.TemporaryDirectory(prefix="mltui-prom-") as tmp:

        def make(openmetrics: str | None = None) -> PrometheusServer:
            root = Path(tmp) / f"prom{len(servers)}"
            root.mkdir()
            server = PrometheusServer(root=root, port=free_port())
            if openmetrics is None:
                openmetrics, server.data_start, server.data_end = fleet_openmetrics()
                server.expected = expected()
            backfill(openmetrics, root)
            servers.append(server)
            try:
                server.start()
            except BaseException:
                print(tail(server.log))
                raise
            return server

        yield make
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def prometheus_fleet(prometheus_factory: Callable[..., PrometheusServer]) -> PrometheusServer:
    """The shared server with the standard fleet (see tests/support/prom_fleet.py).

    Models (5 m rate window; default SLO p95 warn 200 / crit 400 ms, errors 1 % / 5 %):

    * churn (kserve): healthy — p95 183.33 ms, 8.0 rps, error rate 1/120; tracks
      stable (p95 97.92 ms, 6.67 rps, 0 errors) and canary (p95 375 ms, 1.33 rps, 5 %)
    * fraud (kserve): p95 375.0 ms (warn), 6.67 rps, 0 errors
    * ranker (kserve): p95 79.17 ms, 6.67 rps, error rate 0.02 (warn)
    * pricing (kserve): p95 791.67 ms and error rate 0.10 (both crit), 3.33 rps
    * idle (kserve): no traffic (rps 0.0, latency/error rate None)
    * sentiment (triton): mean 35 ms, 2.8 rps, error rate 2/42
    * detector (torchserve): mean 120 ms, 2.0 rps, no error counter (None)
    * llm (vllm): p95 4375 ms, 0.67 rps, no error counter (None)
    * ghost: configured (in MODELS_TOML) but has no series at all

    ``server.expected[name]`` (and ``"churn:stable"``, ``"churn:canary"``) hold the
    exact values as :class:`~tests.support.prom_fleet.Expected`. Do not stop it.
    """
    return prometheus_factory()


@pytest.fixture(scope="session")
def prometheus_config_toml(prometheus_fleet: PrometheusServer) -> str:
    """Config text for the standard fleet: ``[prometheus]`` at the shared server + models."""
    return f'[prometheus]\nurl = "{prometheus_fleet.url}"\ntimeout = "5s"\n' + MODELS_TOML
