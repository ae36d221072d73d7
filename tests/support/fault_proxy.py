"""A small TCP fault proxy for tests: put it between mltui and a real server.

It listens on 127.0.0.1 (loopback only) and forwards every connection to the
upstream ``host:port``, or misbehaves the way networks and servers do, switchable
at runtime with :meth:`FaultProxy.set`:

``pass``      forward both ways untouched;
``refuse``    nothing listens on the port any more: connection refused
              (switching back re-binds the same port);
``close``     accept, then close at once without a byte (server crashed on accept);
``delay``     accept, hold the connection ``delay`` seconds without answering (a hung
              server; pick a delay beyond the client's timeout), then forward;
``reset``     forward the request, relay ``after`` bytes of the answer, then TCP RST
              (a connection reset mid-body);
``truncate``  forward the request, relay ``after`` bytes of the answer, then a clean
              FIN (an answer cut short: Content-Length promises more than arrives).

Switching the mode closes every open connection, so keep-alive pools cannot carry
on with the old behaviour: the next request opens a connection under the new mode.
Threads, not asyncio: the tests calling it are synchronous and Pilot tests run
their own event loop.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

MODES = ("pass", "refuse", "close", "delay", "reset", "truncate")

_CHUNK = 65536


def _rst(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP RST instead of a FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Wake a thread blocked in recv() on it (Linux sends nothing for SHUT_RD);
        # close() alone would wait for that thread and the RST would never leave.
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """One listening port that forwards to ``upstream`` with an injectable fault."""

    def __init__(self, upstream_host: str, upstream_port: int, *, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode = "pass"
        self.delay = 0.0
        self.after = 0
        self.connections = 0
        """Connections accepted so far (tests assert the client really came through here)."""
        self._port = port
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._live: set[socket.socket] = set()
        self._stopped = threading.Event()
        self._generation = 0
        """Bumped on every mode switch: a held (delayed) connection of an older mode is dropped."""

    # ------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FaultProxy:
        self._listen()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._unlisten()
        self._drop_all()

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))
        sock.listen(64)
        self._port = sock.getsockname()[1]
        with self._lock:
            self._listener = sock
        threading.Thread(
            target=self._accept_loop, args=(sock,), name="fault-proxy-accept", daemon=True
        ).start()

    def _unlisten(self) -> None:
        with self._lock:
            sock, self._listener = self._listener, None
        if sock is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone may not.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            _close(sock)

    def _drop_all(self) -> None:
        with self._lock:
            live, self._live = set(self._live), set()
        for sock in live:
            # A FIN, not a RST: a keep-alive pool sees the idle connection closed and
            # opens a new one, so the next request meets the new mode, not a stale reset.
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            _close(sock)

    # ------------------------------------------------------------ switching

    def set(self, mode: str, *, delay: float = 0.0, after: int = 0) -> None:
        """Switch to ``mode`` now (see the module docstring); open connections are dropped."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        with self._lock:
            old = self.mode
            self.mode, self.delay, self.after = mode, delay, after
            self._generation += 1
        self._drop_all()
        if mode == "refuse" and old != "refuse":
            self._unlisten()
        elif mode != "refuse" and old == "refuse":
            self._listen()

    @contextmanager
    def fault(self, mode: str, *, delay: float = 0.0, after: int = 0) -> Iterator[FaultProxy]:
        """``with proxy.fault("reset", after=100): ...`` then back to ``pass``."""
        self.set(mode, delay=delay, after=after)
        try:
            yield self
        finally:
            self.set("pass")

    # ------------------------------------------------------------ forwarding

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._live.update(socks)

    def _untrack(self, *socks: socket.socket) -> None:
        with self._lock:
            self._live.difference_update(socks)

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed ("refuse" or stop)
            with self._lock:
                self.connections += 1
                mode, delay, after, generation = (
                    self.mode,
                    self.delay,
                    self.after,
                    self._generation,
                )
            if mode == "close":
                _close(client)
                continue
            self._track(client)
            threading.Thread(
                target=self._serve,
                args=(client, mode, delay, after, generation),
                name="fault-proxy-conn",
                daemon=True,
            ).start()

    def _serve(
        self, client: socket.socket, mode: str, delay: float, after: int, generation: int
    ) -> None:
        if mode == "delay":
            # Hold without reading or answering; give up early if the mode changes.
            waited = 0.0
            while waited < delay and not self._stopped.is_set():
                with self._lock:
                    if self._generation != generation:
                        break
                self._stopped.wait(0.05)
                waited += 0.05
            with self._lock:
                if self._generation != generation or self._stopped.is_set():
                    self._live.discard(client)
                    _close(client)
                    return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        except OSError:
            self._untrack(client)
            _rst(client)
            return
        self._track(upstream)
        limit = after if mode in ("reset", "truncate") else None
        up = threading.Thread(target=self._pump, args=(client, upstream, None, None), daemon=True)
        up.start()
        self._pump(upstream, client, limit, mode)
        self._untrack(client, upstream)
        _close(upstream)
        up.join(1)

    def _pump(
        self, src: socket.socket, dst: socket.socket, limit: int | None, mode: str | None
    ) -> None:
        """Copy ``src`` to ``dst``; after ``limit`` bytes, cut ``dst`` as ``mode`` says."""
        sent = 0
        try:
            while True:
                data = src.recv(_CHUNK)
                if not data:
                    break
                if limit is not None and sent + len(data) >= limit:
                    dst.sendall(data[: max(0, limit - sent)])
                    if mode == "reset":
                        _rst(dst)
                    else:
                        try:
                            dst.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass
                        _close(dst)
                    _close(src)
                    return
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        # One side finished: pass the FIN on, so the other pump ends too.
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


__all__ = ["MODES", "FaultProxy"]
