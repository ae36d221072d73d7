"""The Alertmanager source: the alerts firing for each model.

One ``GET /api/v2/alerts`` per poll returns every alert Alertmanager holds
(active, silenced, inhibited); each is matched to models by label equality with
``ModelConfig.alert_labels`` (default ``{"model": <name>}``). Every configured
model gets a value, an empty tuple when nothing fires for it. httpx for the same
reasons as the Prometheus source: per-call timeout, headers, TLS control.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from mltui import secrets
from mltui.collectors.base import Source, SourceError
from mltui.collectors.http import make_client
from mltui.config import Config, ModelConfig
from mltui.fleet import Alert
from mltui.secrets import error_text

_SEVERITY_ORDER = {"critical": 0, "crit": 0, "error": 1, "warning": 2, "warn": 2, "info": 3}
_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_time(text: Any) -> datetime | None:
    """Alertmanager's RFC 3339 times (nanosecond fractions, "Z") as aware datetimes."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def alert_labels(model: ModelConfig) -> dict[str, str]:
    """The labels an alert must carry to belong to ``model``."""
    return dict(model.alert_labels) if model.alert_labels else {"model": model.name}


def to_alert(raw: Mapping[str, Any]) -> Alert:
    labels = {str(k): str(v) for k, v in (raw.get("labels") or {}).items()}
    annotations = raw.get("annotations") or {}
    status = raw.get("status") or {}
    state = str(status.get("state") or "active")
    return Alert(
        name=labels.get("alertname", "(unnamed)"),
        severity=labels.get("severity"),
        state=state,
        starts_at=parse_time(raw.get("startsAt")),
        summary=annotations.get("summary") or annotations.get("description"),
        # Muted either way: by a silence, or suppressed (silence or inhibition).
        silenced=bool(status.get("silencedBy")) or state == "suppressed",
        labels=labels,
    )


def _sort_key(alert: Alert) -> tuple[int, int, float, str]:
    severity = _SEVERITY_ORDER.get((alert.severity or "").lower(), 4)
    started = alert.starts_at.timestamp() if alert.starts_at else 0.0
    return (int(alert.silenced), severity, -started, alert.name)


class AlertmanagerSource(Source[tuple[Alert, ...]]):
    """Firing alerts per model from Alertmanager's v2 API."""

    name = "alertmanager"

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        if config.alertmanager is None:
            raise SourceError("no [alertmanager] section in the config")
        self.settings = config.alertmanager
        self._client = make_client(
            self.settings.url,
            self.settings.headers,
            verify_tls=self.settings.verify_tls,
            timeout=self.settings.timeout,
        )

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    def _alerts(self) -> list[dict[str, Any]]:
        url = self.settings.url
        self.count_request()
        try:
            response = self._client.get("/api/v2/alerts")
        except httpx.TimeoutException:
            raise SourceError(
                f"Alertmanager at {url} did not answer within {self.timeout:g}s"
            ) from None
        except httpx.ConnectError as exc:
            raise SourceError(
                f"cannot connect to Alertmanager at {url}: {error_text(exc)}"
            ) from None
        except httpx.HTTPError as exc:
            raise SourceError(f"Alertmanager at {url}: {error_text(exc)}") from None
        if response.status_code >= 300:
            snippet = secrets.redact(response.text[:200].strip().replace("\n", " "))
            raise SourceError(
                f"Alertmanager at {url} answered HTTP {response.status_code} "
                f"{response.reason_phrase}: {snippet}"
            )
        try:
            body = response.json()
        except ValueError:
            raise SourceError(f"malformed response from Alertmanager at {url}: not JSON") from None
        if not isinstance(body, list) or not all(isinstance(a, dict) for a in body):
            raise SourceError(
                f"malformed response from Alertmanager at {url}: not a list of alerts"
            )
        return body

    def fetch(
        self, models: Sequence[ModelConfig]
    ) -> tuple[dict[str, tuple[Alert, ...]], dict[str, str]]:
        alerts = [to_alert(raw) for raw in self._alerts()]
        values: dict[str, tuple[Alert, ...]] = {}
        for model in models:
            wanted = alert_labels(model).items()
            mine = [a for a in alerts if all(a.labels.get(k) == v for k, v in wanted)]
            values[model.name] = tuple(sorted(mine, key=_sort_key))
        return values, {}

    def close(self) -> None:
        self._client.close()
