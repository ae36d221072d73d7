"""A real Prometheus for the demo, when a ``prometheus`` binary is on PATH.

It scrapes the demo's model server every second (so rates are live within seconds),
keeps its data in the workspace's run directory (fresh each start) and listens on
127.0.0.1 only. Without the binary the demo config uses ``[scrape]`` instead.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

from mltui.demo.processes import Child, wait_for

SCRAPE_INTERVAL_S = 1


def prometheus_binary() -> str | None:
    """Path of ``prometheus`` on PATH, or None."""
    return shutil.which("prometheus")


def free_port() -> int:
    """A port on 127.0.0.1 free right now (Prometheus cannot report the one it picked)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_yaml(targets: list[str] | Path, interval: int = SCRAPE_INTERVAL_S) -> str:
    """prometheus.yml scraping ``targets`` ("host:port") every ``interval`` seconds.

    ``targets`` may instead be a file_sd JSON file, so Prometheus can start before the
    model server knows its port (it watches the file and picks the target up at once).
    """
    if isinstance(targets, Path):
        return (
            "global:\n"
            f"  scrape_interval: {interval}s\n"
            f"  scrape_timeout: {interval}s\n"
            f"  evaluation_interval: {interval}s\n"
            "scrape_configs:\n"
            "  - job_name: mltui-demo\n"
            "    file_sd_configs:\n"
            f"      - files: ['{targets}']\n"
            "        refresh_interval: 1s\n"
        )
    quoted = ", ".join(f"'{t}'" for t in targets)
    return (
        "global:\n"
        f"  scrape_interval: {interval}s\n"
        f"  scrape_timeout: {interval}s\n"
        f"  evaluation_interval: {interval}s\n"
        "scrape_configs:\n"
        "  - job_name: mltui-demo\n"
        "    static_configs:\n"
        f"      - targets: [{quoted}]\n"
    )


class PrometheusServer:
    """A started Prometheus; ``url`` is its HTTP API base."""

    def __init__(self, child: Child, url: str) -> None:
        self.child = child
        self.url = url

    def stop(self) -> None:
        self.child.stop()

    def set_targets(self, targets: list[str]) -> None:
        """Point a file_sd Prometheus at ``targets`` ("host:port"); atomic for its watcher."""
        path = self.child.log_path.parent / "targets.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": targets}]), encoding="utf-8")
        os.replace(tmp, path)


def start_prometheus(
    workdir: Path,
    targets: list[str] | None,
    interval: int = SCRAPE_INTERVAL_S,
    timeout: float = 30.0,
) -> PrometheusServer:
    """Start Prometheus scraping ``targets``; RuntimeError with its log when it does not come up.

    With ``targets=None`` it scrapes what :meth:`PrometheusServer.set_targets` names later.
    """
    import httpx

    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError("no prometheus binary on PATH (Debian: apt install prometheus)")
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "data").mkdir(parents=True)
    config = workdir / "prometheus.yml"
    sd_file = workdir / "targets.json"
    if targets is None:
        sd_file.write_text("[]", encoding="utf-8")
    config.write_text(
        config_yaml(sd_file if targets is None else targets, interval), encoding="utf-8"
    )
    last_error = ""
    for _attempt in range(3):  # a free port can be taken between the check and the bind
        port = free_port()
        child = Child(
            "prometheus",
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1d",
                "--log.level=warn",
            ],
            workdir / "prometheus.log",
        )
        url = f"http://127.0.0.1:{port}"

        def ready(url: str = url) -> bool:
            return httpx.get(f"{url}/-/ready", timeout=1.0).status_code == 200

        def settled(child: Child = child, ready: object = ready) -> bool:
            return not child.alive() or ready()  # type: ignore[operator]

        wait_for(settled, timeout)
        if child.alive() and ready():
            return PrometheusServer(child, url)
        last_error = child.log_tail()
        child.stop()
    raise RuntimeError(f"prometheus did not start:\n{last_error}")
