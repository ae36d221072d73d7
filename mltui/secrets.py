"""Keep secrets out of every string mltui shows, logs or writes.

Anything that holds a credential registers it here (config `${VAR}` expansions,
MLflow tokens and passwords, kubeconfig tokens); every error message built from a
foreign exception goes through :func:`redact` before it becomes a value.
"""

from __future__ import annotations

import re
import threading

_MASK = "***"
_lock = threading.Lock()
_secrets: set[str] = set()

# Credentials that appear in URLs or headers even when nobody registered them.
_PATTERNS = [
    (
        re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic|token)\s+[^\s'\",}]+"),
        r"\1\2 ***",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 ***"),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1***@"),
    (
        re.compile(r"(?i)([?&](?:token|access_token|api_key|apikey|password|secret)=)[^&\s]+"),
        r"\1***",
    ),
]

# Short values ("1", "on") would mask innocent text; real credentials are longer.
_MIN_LEN = 4


def register(value: str | None) -> None:
    """Remember ``value`` as a secret so :func:`redact` masks it from now on."""
    if value and len(value) >= _MIN_LEN:
        with _lock:
            _secrets.add(value)


def redact(text: object) -> str:
    """``str(text)`` with every registered secret and credential-like token masked."""
    s = str(text)
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in s:
            s = s.replace(secret, _MASK)
    for pattern, repl in _PATTERNS:
        s = pattern.sub(repl, s)
    return s


def error_text(exc: BaseException, limit: int = 300) -> str:
    """A one-line, secret-free description of ``exc`` for the UI and reports."""
    msg = str(exc).strip().splitlines()
    first = msg[0] if msg else ""
    name = type(exc).__name__
    text = f"{name}: {first}" if first else name
    text = redact(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
