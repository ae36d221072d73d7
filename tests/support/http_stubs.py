"""Tiny local HTTP servers for fault and counting tests.

``CountingProxy`` forwards everything to a real server and counts requests on the
wire, so request counts are measured independently of the collector's own count.
``CannedServer`` answers every request with one fixed response (a 5xx, malformed
JSON, or a slow answer) to see how a collector copes.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ProxyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _forward(self) -> None:
        owner: CountingProxy = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with owner.lock:
            owner.count += 1
            owner.paths.append(self.path)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
        }
        response = owner.client.request(
            self.command, owner.target + self.path, content=body, headers=headers
        )
        self.send_response(response.status_code)
        for key, value in response.headers.items():
            if key.lower() not in (
                "content-length",
                "transfer-encoding",
                "content-encoding",
                "connection",
            ):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.content)))
        self.end_headers()
        self.wfile.write(response.content)

    do_GET = do_POST = _forward


class CountingProxy(_Server):
    """A reverse proxy to ``target`` that counts the requests passing through."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.client = httpx.Client(timeout=30)
        self.lock = threading.Lock()
        self.count = 0
        self.paths: list[str] = []
        super().__init__(_ProxyHandler)

    def reset(self) -> None:
        with self.lock:
            self.count = 0
            self.paths.clear()

    def close(self) -> None:
        super().close()
        self.client.close()


class _CannedHandler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        owner: CannedServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        with owner.lock:
            owner.count += 1
        if owner.delay:
            time.sleep(owner.delay)
        body = owner.body.encode()
        try:
            self.send_response(owner.status)
            self.send_header("Content-Type", owner.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    do_GET = do_POST = _answer


class CannedServer(_Server):
    """Answers every request with ``status`` and ``body`` after ``delay`` seconds."""

    def __init__(
        self,
        status: int = 200,
        body: str = "",
        content_type: str = "application/json",
        delay: float = 0.0,
    ) -> None:
        self.status, self.body, self.content_type, self.delay = status, body, content_type, delay
        self.lock = threading.Lock()
        self.count = 0
        super().__init__(_CannedHandler)
