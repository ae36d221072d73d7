"""Run the TUI in a pseudo-terminal and watch what it writes: first frame, idle bytes, CPU.

The app runs exactly as a user starts it (``python -m mltui --config …``) with a pty
as its terminal (80x24, the bastion-host size), so it takes its real code paths: the
Linux driver, the real compositor, real escape sequences. We read the pty master
continuously (a terminal that stops reading would block the app) and count bytes.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.measure import cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
ALT_SCREEN = b"\x1b[?1049h"
FIRST_FRAME_MARKER = b"Quit"
"""Text of the footer's quit binding: on screen once the fleet screen has painted."""


class PtyApp:
    """A process attached to a fresh pty; ``pump`` drains its output."""

    def __init__(
        self, argv: Sequence[str], *, cols: int = 80, rows: int = 24, env: dict[str, str] | None
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, **(env or {}), "TERM": "xterm-256color", "COLORTERM": ""}
        full_env.pop("TEXTUAL", None)  # no devtools
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=full_env,
            start_new_session=True,
            cwd=str(ROOT),
            close_fds=True,
        )
        os.close(slave)
        self.output = bytearray()
        self.total = 0
        """Bytes read from the terminal since start."""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pump(self, timeout: float) -> bytes:
        """Read whatever arrives within ``timeout`` seconds (returns it, keeps a copy)."""
        got = bytearray()
        deadline = time.perf_counter() + timeout
        while True:
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                break
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            got += chunk
        self.total += len(got)
        self.output += got
        return bytes(got)

    def wait_for(self, marker: bytes, timeout: float) -> float:
        """Seconds from spawn until ``marker`` appears after the alt-screen switch."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            self.pump(0.005)
            at = self.output.find(ALT_SCREEN)
            if at >= 0 and self.output.find(marker, at) >= 0:
                return time.perf_counter() - self.started
            if self.proc.poll() is not None:
                break
        tail = bytes(self.output[-1500:]).decode(errors="replace")
        raise RuntimeError(f"no {marker!r} on screen after {timeout:g}s; output tail: {tail!r}")

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def quit(self) -> None:
        """Press q, then make sure the process is gone."""
        try:
            os.write(self.master, b"q")
            deadline = time.perf_counter() + 5
            while self.proc.poll() is None and time.perf_counter() < deadline:
                self.pump(0.05)
        except OSError:
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        os.close(self.master)


def mltui_argv(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mltui", "--config", str(config), *extra]


def first_frame(config: Path) -> float:
    """Seconds from spawning ``mltui`` to its first painted fleet screen."""
    app = PtyApp(mltui_argv(config), env=None)
    try:
        return app.wait_for(FIRST_FRAME_MARKER, timeout=60)
    finally:
        app.quit()


def idle(config: Path, seconds: float, warmup: float) -> dict[str, float]:
    """CPU % and bytes/min of the TUI over ``seconds`` after ``warmup`` seconds of settling.

    ``config`` should poll every 15 s against backends whose data does not change.
    """
    app = PtyApp(mltui_argv(config), env=None)
    try:
        app.wait_for(FIRST_FRAME_MARKER, timeout=60)
        app.pump(warmup)  # first poll, first table fill, chart/sparkline setup
        cpu0, bytes0, t0 = app.cpu(), app.total, time.perf_counter()
        app.pump(seconds)
        elapsed = time.perf_counter() - t0
        cpu = app.cpu() - cpu0
        written = app.total - bytes0
        alive = app.proc.poll() is None
    finally:
        app.quit()
    if not alive:
        raise RuntimeError("the TUI exited during the idle measurement")
    return {
        "seconds": elapsed,
        "cpu_percent": 100 * cpu / elapsed,
        "bytes_per_min": written * 60 / elapsed,
    }
