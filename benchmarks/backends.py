"""Real backends holding the benchmark fleet, set up the way the test harness does.

- **Prometheus**: the real server over TSDB blocks written by ``promtool`` from the
  series of :mod:`benchmarks.fleet_data` (``PrometheusServer`` and ``backfill`` of
  ``tests/harness/prometheus.py``).
- **Kubernetes**: the API stand-in with one Deployment per model (plus canaries), in
  its own process (:mod:`benchmarks.kube_server`), reached by the real ``kubernetes``
  client through a kubeconfig.
- **MLflow**: a real ``mlflow server`` (``tests/support/mlflow_server.py``) over a
  sqlite registry with one registered model per model (:mod:`benchmarks.mlflow_fleet`).
- **Alertmanager** (optional): the real server with one firing alert per 20 models.

Every backend holds the *largest* fleet size of the run; a fleet of N configures the
first N models. That is how a real fleet looks to mltui too: Prometheus and the
cluster hold more than the models you ask about.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks import fleet_data
from tests.harness.alertmanager import AlertmanagerServer
from tests.harness.prometheus import PrometheusServer, backfill
from tests.support.mlflow_server import MlflowServer, start_mlflow_server
from tests.support.procs import free_port, tail

ROOT = Path(__file__).resolve().parent.parent
ALERT_EVERY = 20


def default_cache() -> Path:
    """Where built MLflow registries are kept between runs ($MLTUI_BENCH_CACHE)."""
    env = os.environ.get("MLTUI_BENCH_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mltui-bench"


@dataclass
class KubeProcess:
    """The stand-in's process, its URL and the kubeconfig that reaches it."""

    proc: subprocess.Popen[str]
    url: str
    kubeconfig: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # kube_server exits when its stdin closes
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Backends:
    """Running backends for a fleet of ``size`` models, and config files for them."""

    root: Path
    size: int
    prometheus: PrometheusServer
    kube: KubeProcess
    mlflow: MlflowServer | None
    alertmanager: AlertmanagerServer | None
    setup_s: dict[str, float] = field(default_factory=dict)
    """Seconds each backend took to set up (printed with the results)."""

    def config_toml(
        self, n: int, refresh: str = "15s", mlflow: bool = True, timeout: str = "5s"
    ) -> str:
        """A config for the first ``n`` models on these backends (``timeout`` per source)."""
        assert n <= self.size, f"backends hold {self.size} models, not {n}"
        parts = [
            f'refresh = "{refresh}"',
            f'window = "{fleet_data.WINDOW_S}s"',
            f'\n[prometheus]\nurl = "{self.prometheus.url}"\ntimeout = "{timeout}"',
            f'\n[kubernetes]\nkubeconfig = "{self.kube.kubeconfig}"\n'
            f'context = "standin"\nnamespace = "{fleet_data.NAMESPACE}"\ntimeout = "{timeout}"',
        ]
        if mlflow and self.mlflow is not None:
            parts.append(f'\n[mlflow]\ntracking_uri = "{self.mlflow.url}"\ntimeout = "{timeout}"')
        if self.alertmanager is not None:
            parts.append(
                f'\n[alertmanager]\nurl = "{self.alertmanager.url}"\ntimeout = "{timeout}"'
            )
        return "\n".join(parts) + "\n\n" + fleet_data.models_toml(n)

    def write_config(
        self, n: int, refresh: str = "15s", mlflow: bool = True, timeout: str = "5s"
    ) -> Path:
        path = self.root / f"config-{n}-{refresh}-{timeout}{'' if mlflow else '-nomlflow'}.toml"
        path.write_text(self.config_toml(n, refresh, mlflow, timeout))
        return path

    def close(self) -> None:
        self.kube.stop()
        if self.mlflow is not None:
            self.mlflow.stop()
        if self.alertmanager is not None:
            self.alertmanager.stop()
        self.prometheus.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_prometheus(root: Path, n: int, future_s: int) -> PrometheusServer:
    (root / "prometheus").mkdir(parents=True)
    server = PrometheusServer(root=root / "prometheus", port=free_port())
    backfill(fleet_data.openmetrics(n, future_s), server.root)
    try:
        server.start()
    except BaseException:
        print(tail(server.log), file=sys.stderr)
        raise
    return server


def start_kube(root: Path, n: int) -> KubeProcess:
    kubeconfig = root / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "kube_server.py"),
            "--models",
            str(n),
            "--kubeconfig",
            str(kubeconfig),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until populated (a second or two at 1,000)
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"kube stand-in did not start: {line!r}")
    return KubeProcess(proc, line.split()[1], kubeconfig)


def start_alertmanager(root: Path, n: int) -> AlertmanagerServer:
    (root / "alertmanager").mkdir(parents=True)
    server = AlertmanagerServer(root=root / "alertmanager", port=free_port())
    server.start()
    server.post_alerts(
        [
            AlertmanagerServer.alert(
                "ModelLatencyHigh", {"model": fleet_data.model_name(i)}, lasts=_hours(12)
            )
            for i in range(0, n, ALERT_EVERY)
        ]
    )
    return server


def _hours(h: float) -> timedelta:

    return timedelta(hours=h)


def start_backends(
    size: int,
    *,
    mlflow: bool = True,
    alertmanager: bool = True,
    future_s: int = 45 * 60,
    cache: Path | None = None,
    log: bool = True,
) -> Backends:
    """Start every backend holding ``size`` models; ``close()`` stops them.

    ``future_s``: seconds of Prometheus data past now (rates are exact only while
    "now" is inside the data; a soak needs its duration plus a margin).
    """
    root = Path(tempfile.mkdtemp(prefix="mltui-bench-"))
    setup: dict[str, float] = {}

    def timed(name: str, fn: Callable[..., Any], *args: Any) -> Any:
        started = time.perf_counter()
        if log:
            print(f"  starting {name} ({size} models)…", flush=True)
        value = fn(*args)
        setup[name] = time.perf_counter() - started
        return value

    prometheus = timed("prometheus", start_prometheus, root, size, future_s)
    kube = timed("kubernetes", start_kube, root, size)
    server: MlflowServer | None = None
    if mlflow:
        from benchmarks.mlflow_fleet import registry_store

        data = timed(
            "mlflow store", registry_store, size, cache or default_cache(), root / "mlflow"
        )
        server = timed("mlflow server", start_mlflow_server, data, root / "mlflow-logs")
    am = timed("alertmanager", start_alertmanager, root, size) if alertmanager else None
    return Backends(root, size, prometheus, kube, server, am, setup)
