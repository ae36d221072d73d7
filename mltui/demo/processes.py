"""Child processes of the demo, and the guarantee that none outlives mltui.

Every child runs in its own process group (so a stop reaches anything it starts)
and, on Linux, asks the kernel to send it SIGTERM when mltui dies — even by
SIGKILL, where no Python cleanup can run. Normal exits, Ctrl-C and crashes go
through :func:`stop_all` (try/finally in ``run_demo``, ``atexit`` and signal
handlers as a second line).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

OWNER_ENV = "MLTUI_DEMO_OWNER"
"""Set in every child's environment to the pid of the mltui that started it."""

_lock = threading.Lock()
_children: list[Child] = []


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: deliver SIGTERM to this child when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Child:
    """One started process: its argv, its log file, and how to stop it for good."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, **(env or {}), OWNER_ENV: str(os.getpid())}
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=True,  # own process group: killpg reaches its children too
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
            )
        with _lock:
            _children.append(self)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The end of the child's log, for an error message."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the whole process group, then SIGKILL what is left after ``grace`` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # The group may hold grandchildren even after the leader exited.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with _lock:
            if self in _children:
                _children.remove(self)


def stop_all() -> None:
    """Stop every child still running, newest first (traffic before server before Prometheus)."""
    with _lock:
        children = list(reversed(_children))
    for child in children:
        child.stop()


_installed = False


def install_cleanup() -> None:
    """Stop the children at interpreter exit and on SIGTERM/SIGHUP (Ctrl-C raises anyway)."""
    global _installed
    if _installed:
        return
    _installed = True
    atexit.register(stop_all)

    def on_signal(signum: int, frame: object) -> None:
        stop_all()
        # Re-raise as an exit so try/finally blocks and atexit run in order.
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        with contextlib.suppress(ValueError, OSError):  # not in the main thread
            signal.signal(sig, on_signal)


def watch_parent(interval: float = 1.0) -> None:
    """In a child: exit when the mltui that started it is gone (portable PDEATHSIG)."""
    owner = os.environ.get(OWNER_ENV)
    if not owner or not owner.isdigit():
        return
    start_parent = os.getppid()

    def loop() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != start_parent:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    threading.Thread(target=loop, name="watch-parent", daemon=True).start()


def wait_for(predicate: object, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():  # type: ignore[operator]
                return True
        time.sleep(interval)
    return False
