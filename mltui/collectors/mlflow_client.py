"""An MlflowClient that fails in seconds, not minutes, and never leaks credentials.

MLflow's HTTP layer reads its timeout and retry policy from environment variables
*at request time* (``mlflow.utils.rest_utils.http_request`` calls
``MLFLOW_HTTP_REQUEST_TIMEOUT.get()`` etc. on every request), with defaults of
120 s per request and 7 retries with exponential backoff — minutes against a dead
server. :func:`make_client` sets those variables from ``[mlflow] timeout`` before
the client makes its first request. They are process-wide: every MLflow client in
mltui (collector and actions) shares the same bounded policy.

Authentication is MLflow's own: ``MLFLOW_TRACKING_TOKEN`` (bearer) or
``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (basic), read by MLflow
from the environment. We only register their values as secrets so no error text
can show them.

``mlflow`` is imported inside the functions: ``mltui.cli`` must not pay for it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from mltui import secrets
from mltui.config import Config

AUTH_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

MAX_RETRIES = 1
"""One retry: a dropped connection or a 503 gets a second chance, a dead server does not
get seven. urllib3 retries the first time without sleeping, so backoff never adds up."""


MAX_FILTER_CHARS = 6000
"""Longest ``name IN (…)`` search filter per request, URL-encoded. MLflow's searches are
GETs with the filter in the query string, and proxies in front of a tracking server
commonly cap a request line at 8 KB (nginx's default); uvicorn's limit is 16 KB."""


class MlflowUnavailable(Exception):
    """The tracking store cannot be used at all (bad URI, missing sqlite file)."""


def request_timeout(config: Config) -> float:
    """``[mlflow] timeout`` in seconds (default 5)."""
    return config.mlflow.timeout if config.mlflow is not None else 5.0


def apply_http_policy(timeout: float) -> None:
    """Set MLflow's per-request timeout and retry policy (read by MLflow per request).

    MLFLOW_HTTP_REQUEST_TIMEOUT is parsed by MLflow as an int, so sub-second
    timeouts round up to 1 s.
    """
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, math.ceil(timeout)))
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(MAX_RETRIES)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "1"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = "0"


def register_auth_secrets() -> None:
    """Make sure the MLflow credentials in the environment never reach a message."""
    for name in AUTH_VARIABLES:
        secrets.register(os.environ.get(name))


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///…`` URI (SQLAlchemy's form), else None.

    ``sqlite:///mlflow.db`` is relative to the working directory and
    ``sqlite:////abs/mlflow.db`` is absolute: what follows the third slash is the path.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    rest = uri[len(prefix) :].split("?", 1)[0]
    return Path(rest) if rest else None


def make_client(config: Config) -> Any:
    """An ``mlflow.MlflowClient`` for ``config.mlflow_uri`` with bounded timeouts.

    Raises :class:`MlflowUnavailable` when no URI is configured or a ``sqlite:///``
    store file does not exist (MLflow would silently create an empty store there,
    running every schema migration on the way).
    """
    uri = config.mlflow_uri
    if not uri:
        raise MlflowUnavailable("no MLflow tracking URI (set [mlflow] tracking_uri)")
    db = sqlite_path(uri)
    if db is not None and str(db) != ":memory:" and not db.is_file():
        raise MlflowUnavailable(f"MLflow sqlite store not found: {db}")
    apply_http_policy(request_timeout(config))
    register_auth_secrets()

    from mlflow.tracking import MlflowClient

    # The registry lives in the same store unless the user says otherwise.
    registry_uri = os.environ.get("MLFLOW_REGISTRY_URI") or uri
    return MlflowClient(tracking_uri=uri, registry_uri=registry_uri)


def error_code(exc: BaseException) -> str | None:
    """MLflow's error code of ``exc`` (e.g. "RESOURCE_DOES_NOT_EXIST"), if it has one."""
    code = getattr(exc, "error_code", None)
    return code if isinstance(code, str) else None


def describe_error(exc: BaseException, uri: str | None, timeout: float) -> str:
    """A short, secret-free sentence for a failed MLflow call."""
    import requests

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, requests.exceptions.Timeout):
            return f"MLflow at {secrets.redact(uri)} did not answer within {timeout:g}s"
        if isinstance(cause, requests.exceptions.ConnectionError):
            text = str(cause).lower()
            # Retries exhausted on read timeouts surface as a ConnectionError too.
            if "timed out" in text:
                return f"MLflow at {secrets.redact(uri)} did not answer within {timeout:g}s"
            why = "connection refused" if "refused" in text else "cannot connect"
            return f"MLflow at {secrets.redact(uri)}: {why}"
        cause = cause.__cause__ or cause.__context__
    text = str(exc)
    # MLflow wraps transport errors as "API request to <url> failed with exception …".
    lowered = text.lower()
    if "max retries exceeded" in lowered or "connection refused" in lowered:
        why = "connection refused" if "refused" in lowered else "cannot connect"
        return f"MLflow at {secrets.redact(uri)}: {why}"
    if "timed out" in lowered or "timeout" in lowered:
        return f"MLflow at {secrets.redact(uri)} did not answer within {timeout:g}s"
    return secrets.error_text(exc)


# ---------------------------------------------------------------------- search filters


def quote_name(name: str) -> str | None:
    """``name`` as a string literal of MLflow's search syntax, or None if it cannot be one.

    MLflow's filter parser takes '…' or "…" and has no escapes (verified on 3.17:
    ``'it''s'`` and ``'it\\'s'`` match nothing), so a name holding both quote kinds
    cannot be searched for.
    """
    if "'" not in name:
        return f"'{name}'"
    if '"' not in name:
        return f'"{name}"'
    return None


def name_in_filter(names: Sequence[str]) -> str:
    """``name IN ('a', 'b', …)`` for names :func:`quote_name` accepts."""
    return "name IN (" + ", ".join(q for q in map(quote_name, names) if q) + ")"


def name_chunks(names: Sequence[str], limit: int = MAX_FILTER_CHARS) -> list[list[str]]:
    """``names`` (each quotable) split so each chunk's :func:`name_in_filter` stays under
    ``limit`` characters once URL-encoded; order kept, every chunk non-empty."""
    chunks: list[list[str]] = []
    size = limit  # forces a first chunk
    for name in names:
        quoted = quote_name(name)
        if quoted is None:
            continue
        cost = len(quote_plus(quoted + ", "))
        if chunks and size + cost <= limit:
            chunks[-1].append(name)
            size += cost
        else:
            chunks.append([name])
            size = len(quote_plus("name IN ()")) + cost
    return chunks
