"""A real Alertmanager (Debian ``prometheus-alertmanager``) for collector tests.

Fixtures
--------
``alertmanager`` (session)
    An :class:`AlertmanagerServer`, started on 127.0.0.1 with a free port, a temp
    ``--storage.path``, clustering off and a single "null" receiver. Helpers:
    ``post_alerts([...])`` (``POST /api/v2/alerts``), ``alert(name, labels, ...)``
    to build one alert, ``silence(matchers, ...) -> silence id``, ``expire(id)``,
    ``stop()`` / ``start()``. Alerts posted by one test stay for the session, so
    tests use their own model label values.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.procs import free_port, require_binary, stop_process, wait_ready

HINT = (
    "install Debian package prometheus-alertmanager "
    "(apt-get install -y prometheus-alertmanager; brew install alertmanager)"
)

CONFIG = """\
route:
  receiver: "null"
  group_wait: 1h
receivers:
  - name: "null"
"""


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class AlertmanagerServer:
    root: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "alertmanager.log"

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        binary = require_binary("prometheus-alertmanager", HINT)
        (self.root / "alertmanager.yml").write_text(CONFIG)
        (self.root / "data").mkdir(exist_ok=True)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={self.root / 'alertmanager.yml'}",
                    f"--storage.path={self.root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--cluster.listen-address=",  # empty: no gossip, no extra port
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        wait_ready(f"{self.url}/-/ready", self.proc, self.log)

    def stop(self) -> None:
        stop_process(self.proc)

    @staticmethod
    def alert(
        name: str,
        labels: Mapping[str, str],
        *,
        severity: str | None = "warning",
        summary: str | None = None,
        starts_at: datetime | None = None,
        lasts: timedelta = timedelta(hours=2),
    ) -> dict[str, Any]:
        """One alert in the v2 API's PostableAlert shape."""
        start = starts_at or datetime.now(UTC) - timedelta(minutes=5)
        all_labels = {"alertname": name, **labels}
        if severity is not None:
            all_labels["severity"] = severity
        body: dict[str, Any] = {
            "labels": all_labels,
            "startsAt": _iso(start),
            "endsAt": _iso(datetime.now(UTC) + lasts),
        }
        if summary is not None:
            body["annotations"] = {"summary": summary}
        return body

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        response = httpx.post(f"{self.url}/api/v2/alerts", json=list(alerts), timeout=10)
        assert response.status_code == 200, response.text

    def silence(
        self, matchers: Mapping[str, str], comment: str = "test", hours: float = 1.0
    ) -> str:
        """Create a silence with equality matchers; returns its id."""
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in matchers.items()
            ],
            "startsAt": _iso(now - timedelta(seconds=1)),
            "endsAt": _iso(now + timedelta(hours=hours)),
            "createdBy": "mltui-tests",
            "comment": comment,
        }
        response = httpx.post(f"{self.url}/api/v2/silences", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return str(response.json()["silenceID"])

    def expire(self, silence_id: str) -> None:
        response = httpx.delete(f"{self.url}/api/v2/silence/{silence_id}", timeout=10)
        assert response.status_code == 200, response.text


@pytest.fixture(scope="session")
def alertmanager() -> Iterator[AlertmanagerServer]:
    """A real Alertmanager for the session (see the module docstring for its helpers)."""
    with tempfile.TemporaryDirectory(prefix="mltui-am-") as tmp:
        server = AlertmanagerServer(root=Path(tmp), port=free_port())
        server.start()
        try:
            yield server
        finally:
            server.stop()
