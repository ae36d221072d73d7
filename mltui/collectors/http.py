"""One way to build the httpx client of an HTTP source (Prometheus, Alertmanager).

Header values are credentials more often than not: they are registered as secrets
here, once, so no error message can show them.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from pydantic import SecretStr

from mltui import secrets


def make_client(
    url: str, headers: Mapping[str, SecretStr], *, verify_tls: bool, timeout: float
) -> httpx.Client:
    """A client for ``url`` with the configured headers, TLS checking and per-call timeout."""
    plain = {name: value.get_secret_value() for name, value in headers.items()}
    for value in plain.values():
        secrets.register(value)
    return httpx.Client(
        base_url=url.rstrip("/"),
        headers=plain,
        verify=verify_tls,
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
    )
