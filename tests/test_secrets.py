"""Secrets never leave mltui: a test sets distinctive values and greps every output.

The credentials: a Prometheus bearer token and API key from ``${VAR}`` headers, an
Alertmanager header, MLflow's ``MLFLOW_TRACKING_TOKEN`` or
``MLFLOW_TRACKING_USERNAME``/``_PASSWORD``, a kubeconfig token and client key data,
and a retrain webhook's header and HMAC secret. Every source points at an
:class:`EchoServer` that answers 500 with the request's own headers in the body —
the worst case: a server that puts the credential into the error mltui shows.

Outputs searched: the snapshot's errors (and the reprs of everything in it), log
records at DEBUG, the audit log, the TUI screen (exported SVG), ``--check`` text and
JSON (stdout and stderr), exception and config reprs.

Also here: TLS verification is on by default (a self-signed server is refused) and
``verify_tls = false`` reaches it but shows a warning in the status bar and on
``--check``'s stderr; a world-readable config holding a literal credential warns
the same two ways.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mltui.actions.audit import AuditLog
from mltui.actions.engine import ActionEngine
from mltui.app import make_app
from mltui.collectors.collect import FleetCollector
from mltui.config import ConfigError, load_config, parse_config
from mltui.widgets.statusbar import StatusBar

PROM_TOKEN = "promTOKEN-5f0c2d7e91ab"
PROM_KEY = "promAPIKEY-77e1c0d93b"
AM_TOKEN = "amTOKEN-0b9d8c7a6e"
MLFLOW_TOKEN = "mlflowTOKEN-4c3b2a1f09"
MLFLOW_USER = "mlflow-user-3e1a"
MLFLOW_PASSWORD = "mlflowPASSWORD-9a8b7c6d5e"
KUBE_TOKEN = "kubeTOKEN-1d2c3b4a5f6e"
KUBE_KEY_DATA = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nkubeKEYbody-8f7e6d\n").decode()
WEBHOOK_TOKEN = "webhookTOKEN-6a5b4c3d2e"
HMAC_SECRET = "hmacSECRET-2f3e4d5c6b"

ENV = {
    "MLTUI_T_PROM_TOKEN": PROM_TOKEN,
    "MLTUI_T_PROM_KEY": PROM_KEY,
    "MLTUI_T_AM_TOKEN": AM_TOKEN,
    "MLTUI_T_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
    "MLTUI_T_HMAC": HMAC_SECRET,
}


def forbidden(auth: str) -> list[str]:
    """Every string that must never appear, including encoded forms."""
    out = [
        PROM_TOKEN,
        PROM_KEY,
        AM_TOKEN,
        KUBE_TOKEN,
        KUBE_KEY_DATA,
        "kubeKEYbody-8f7e6d",
        WEBHOOK_TOKEN,
        HMAC_SECRET,
    ]
    if auth == "token":
        out.append(MLFLOW_TOKEN)
    else:
        out += [
            MLFLOW_PASSWORD,
            base64.b64encode(f"{MLFLOW_USER}:{MLFLOW_PASSWORD}".encode()).decode(),
        ]
    return out


def assert_clean(text: str, auth: str, where: str) -> None:
    leaked = [s for s in forbidden(auth) if s in text]
    assert not leaked, f"{where} shows {leaked}:\n{text[:3000]}"


# ---------------------------------------------------------------- a server that echoes


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        owner: EchoServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        # Reversed: clients send their own headers (the credentials) last, and error
        # snippets are clipped, so put them first where any snippet will quote them.
        echoed = f"{self.command} {self.path} " + " ".join(
            f"{k}: {v}" for k, v in reversed(self.headers.items())
        )
        with owner.lock:
            owner.seen.append(echoed)
        # Every field an error parser might quote: Prometheus "error", a Kubernetes
        # Status "message", MLflow "message", plus the raw text.
        body = json.dumps(
            {
                "status": "error",
                "errorType": "echo",
                "error": f"you sent {echoed}",
                "kind": "Status",
                "apiVersion": "v1",
                "message": f"you sent {echoed}",
                "error_code": "INTERNAL_ERROR",
                "code": owner.code,
            }
        ).encode()
        self.send_response(owner.code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer


class EchoServer:
    """Answers every request with ``code`` and the request's headers in the body."""

    def __init__(self, code: int = 500, tls: ssl.SSLContext | None = None) -> None:
        self.code = code
        self.seen: list[str] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    # 400: every client quotes a 4xx answer's message (a 500 may be retried away).
    server = EchoServer(400)
    try:
        yield server
    finally:
        server.close()


# ---------------------------------------------------------------- the config


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [
                    {
                        "name": "u",
                        "user": {
                            "token": KUBE_TOKEN,
                            "client-key-data": KUBE_KEY_DATA,
                        },
                    }
                ],
                "contexts": [
                    {"name": "echo", "context": {"cluster": "c", "user": "u", "namespace": "ml"}}
                ],
                "current-context": "echo",
            }
        )
    )
    return path


def config_text(url: str, kubeconfig: Path) -> str:
    return f"""
[prometheus]
url = "{url}"
timeout = "1s"
headers = {{ Authorization = "Bearer ${{MLTUI_T_PROM_TOKEN}}", X-Api-Key = "${{MLTUI_T_PROM_KEY}}" }}

[alertmanager]
url = "{url}"
timeout = "1s"
headers = {{ X-Scope-Token = "${{MLTUI_T_AM_TOKEN}}" }}

[mlflow]
tracking_uri = "{url}"
timeout = "2s"

[kubernetes]
kubeconfig = "{kubeconfig}"
timeout = "3s"

[[models]]
name = "churn"
registered_model = "churn-classifier"
metrics = "kserve"
target = {{ kind = "Deployment", name = "churn" }}
retrain = {{ webhook = "{url}/hooks/retrain", headers = {{ X-Hook-Token = "${{MLTUI_T_WEBHOOK_TOKEN}}" }}, hmac_secret = "${{MLTUI_T_HMAC}}", timeout = "2s" }}
"""


def set_secrets(monkeypatch: pytest.MonkeyPatch, auth: str) -> str:
    """The distinctive secrets in the environment; MLflow auth by "token" or "basic"."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    if auth == "token":
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", MLFLOW_TOKEN)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", MLFLOW_USER)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", MLFLOW_PASSWORD)
    return auth


@pytest.fixture(params=["token", "basic"])
def secret_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both MLflow auth flavours, for the in-process tests (cheap)."""
    return set_secrets(monkeypatch, str(request.param))


def everything_in(snapshot: Any) -> str:
    return repr(snapshot) + json.dumps(
        {k: [v.status, v.error] for k, v in snapshot.sources.items()}
    )


# ---------------------------------------------------------------- the tests


def test_sources_that_echo_credentials_never_show_them(
    echo: EchoServer, secret_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(
        config_text(echo.url, write_kubeconfig(tmp_path / "kc", echo.url)), "c.toml"
    )
    caplog.set_level(logging.DEBUG)
    collector = FleetCollector(config)
    try:
        snapshot = collector.collect()
    finally:
        collector.close()
    # The credentials really were sent, so the echo really contained them…
    sent = "\n".join(echo.seen)
    assert PROM_TOKEN in sent and PROM_KEY in sent and AM_TOKEN in sent and KUBE_TOKEN in sent
    assert (MLFLOW_TOKEN if secret_env == "token" else "Basic ") in sent
    # …every source failed with the echo's answer…
    for name in ("prometheus", "alertmanager", "mlflow", "kubernetes"):
        assert snapshot.source(name).status == "error", snapshot.source(name)
    for name in ("prometheus", "alertmanager", "mlflow", "kubernetes"):
        assert "you sent" in (snapshot.source(name).error or ""), snapshot.source(name)
    assert "***" in (snapshot.source("prometheus").error or "")  # quoted, and masked
    # …and nothing shows a secret: errors, reprs, logs.
    assert_clean(everything_in(snapshot), secret_env, "the snapshot")
    assert_clean(caplog.text, secret_env, "the logs")
    assert_clean(repr(config) + str(config) + config.model_dump_json(), secret_env, "the config")


def test_a_failed_webhook_that_echoes_its_headers_leaks_nothing_to_the_audit_log(
    echo: EchoServer, secret_env: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = parse_config(
        config_text(echo.url, write_kubeconfig(tmp_path / "kc", echo.url)), "c.toml"
    )
    caplog.set_level(logging.DEBUG)
    audit = AuditLog(tmp_path / "audit.jsonl")
    engine = ActionEngine(config, audit=audit)
    try:
        plan = engine.plan("retrain", "churn")
        assert plan.refusal is None, plan.refusal
        result = engine.apply(plan)
    finally:
        engine.close()
    assert result.status == "failed"
    assert WEBHOOK_TOKEN in "\n".join(echo.seen)  # it was sent, and echoed back
    assert "HTTP 400" in (result.steps[0].error or "")
    text = audit.path.read_text()
    assert [json.loads(line)["phase"] for line in text.splitlines()] == ["attempt", "result"]
    assert_clean(text, secret_env, "the audit log")
    assert_clean(repr(result) + repr(plan), secret_env, "the action result")
    assert_clean(caplog.text, secret_env, "the logs")


def test_a_secret_that_is_itself_the_bad_value_is_masked_in_the_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLTUI_T_PROM_TOKEN", PROM_TOKEN)
    text = '[prometheus]\nurl = "http://x"\ntimeout = "${MLTUI_T_PROM_TOKEN}"\n'
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.toml")
    assert "c.toml:3: prometheus.timeout" in str(info.value)
    for shown in (str(info.value), repr(info.value), repr(info.value.args)):
        assert PROM_TOKEN not in shown, shown


async def test_the_tui_screen_never_shows_a_secret(
    echo: EchoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_env = set_secrets(monkeypatch, "token")
    config = parse_config(
        config_text(echo.url, write_kubeconfig(tmp_path / "kc", echo.url)), "c.toml"
    )
    app = make_app(config, FleetCollector(config))
    async with app.run_test(size=(160, 40)) as pilot:
        deadline = time.monotonic() + 10
        while app.snapshot is None or app.snapshot.source("prometheus").ok:
            assert time.monotonic() < deadline, "no poll finished"
            await pilot.pause(0.05)
        await pilot.pause(0.2)
        fleet_svg = app.export_screenshot()
        assert "you sent" in fleet_svg.replace("&#160;", " ")  # the echoed errors are on screen
        await pilot.press("enter")  # the model screen, with its own status bar
        await pilot.pause(0.3)
        model_svg = app.export_screenshot()
    assert_clean(fleet_svg + model_svg, secret_env, "the TUI")


def run_check(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mltui", "--check", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.parametrize(("fmt", "auth"), [("text", "token"), ("json", "basic")])
def test_check_output_never_shows_a_secret(
    echo: EchoServer, tmp_path: Path, fmt: str, auth: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_env = set_secrets(monkeypatch, auth)
    path = tmp_path / "config.toml"
    path.write_text(config_text(echo.url, write_kubeconfig(tmp_path / "kc", echo.url)))
    path.chmod(0o600)
    done = run_check(path, dict(os.environ), "--format", fmt)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "you sent" in done.stdout  # the echoed errors are in the report…
    assert_clean(done.stdout + done.stderr, secret_env, f"--check --format {fmt}")  # …masked


# ---------------------------------------------------------------- TLS and warnings


@pytest.fixture(scope="module")
def tls_echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoServer]:
    """An echo server behind a self-signed certificate (openssl req -x509)."""
    root = tmp_path_factory.mktemp("tls")
    key, cert = root / "key.pem", root / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = EchoServer(500, tls=context)
    try:
        yield server
    finally:
        server.close()


def test_tls_is_verified_by_default_and_off_only_with_a_warning(tls_echo: EchoServer) -> None:
    base = f'[prometheus]\nurl = "{tls_echo.url}"\ntimeout = "2s"\n[[models]]\nname = "m"\n'
    default = parse_config(base, "c.toml")
    assert default.prometheus is not None and default.prometheus.verify_tls is True
    assert default.warnings == ()
    collector = FleetCollector(default)
    try:
        refused = collector.collect().source("prometheus")
    finally:
        collector.close()
    assert refused.status == "error" and "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")

    insecure = parse_config(
        base.replace('timeout = "2s"', 'timeout = "2s"\nverify_tls = false'), "c.toml"
    )
    assert any("verify_tls = false" in w for w in insecure.warnings)
    collector = FleetCollector(insecure)
    try:
        reached = collector.collect().source("prometheus")
    finally:
        collector.close()
    assert "HTTP 500" in (reached.error or "")  # the TLS handshake passed: the server answered


def _warned_config(tmp_path: Path) -> Path:
    """verify_tls off, and a literal token in a world-readable file."""
    path = tmp_path / "config.toml"
    path.write_text(
        '[prometheus]\nurl = "https://127.0.0.1:1"\ntimeout = "1s"\nverify_tls = false\n'
        f'headers = {{ Authorization = "Bearer {PROM_TOKEN}" }}\n'
        '[[models]]\nname = "churn"\n'
    )
    path.chmod(0o644)
    return path


async def test_config_warnings_are_in_the_status_bar(tmp_path: Path) -> None:
    config = load_config(_warned_config(tmp_path))
    assert len(config.warnings) == 2, config.warnings
    app = make_app(config, FleetCollector(config))
    async with app.run_test(size=(300, 30)) as pilot:
        deadline = time.monotonic() + 10
        while app.snapshot is None:
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        status = str(app.screen.query_one(StatusBar).render())
        svg = app.export_screenshot()
    assert "verify_tls = false" in status
    assert "readable by other users" in status
    assert PROM_TOKEN not in status and PROM_TOKEN not in svg


def test_config_warnings_are_on_check_stderr(tmp_path: Path) -> None:
    done = run_check(_warned_config(tmp_path), dict(os.environ), "--format", "json")
    assert done.returncode == 3
    json.loads(done.stdout)  # stdout stays pure JSON
    assert "mltui: warning: [prometheus] verify_tls = false" in done.stderr
    assert "is readable by other users and holds a literal credential" in done.stderr
    assert PROM_TOKEN not in done.stdout + done.stderr
