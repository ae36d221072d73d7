"""The demo workspace: everything the demo writes, in one directory of the user cache.

``$XDG_CACHE_HOME/mltui/demo`` (``~/.cache/mltui/demo``), reused across runs so the
second start skips training; ``mltui --demo --demo-reset`` wipes it. Layout::

    mlflow.db                 the MLflow tracking + registry store (sqlite)
    artifacts/                MLflow artifacts (model pickles)
    data/<model>/*.parquet    datasets: full dataset, training split, retrain sets
    inference/<model>/*.parquet   the server's inference log, one file per hour
    mltui.toml                the config mltui runs the demo with (an example to copy)
    run/                      logs, the server's port file, Prometheus' data
    READY                     written last by training: the store is complete
    .mltui-demo               the workspace marker and lock file (pid of the running demo)

mltui deletes only what it can prove is its own: a directory is wiped (on
``--demo-reset``, or to rebuild a half-trained store) only when it carries the
``.mltui-demo`` marker or is empty. ``MLTUI_DEMO_DIR=.`` in a project directory
is refused with an error instead of emptying it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mltui.demo.errors import DemoError
from mltui.locations import cache_dir

FORMAT = "2"
"""Bumped when the layout changes; an older workspace is rebuilt."""

MARKER = ".mltui-demo"
"""File that makes a directory an mltui demo workspace (the only kind mltui deletes)."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def db(self) -> Path:
        return self.root / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.db}"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def data_dir(self, model: str) -> Path:
        return self.root / "data" / model

    def dataset(self, model: str) -> Path:
        """All rows of the model's dataset (the traffic generator draws from it)."""
        return self.data_dir(model) / "dataset.parquet"

    def training_set(self, model: str) -> Path:
        """The training split every initial version was fitted on (drift's reference)."""
        return self.data_dir(model) / "train.parquet"

    def inference_dir(self, model: str) -> Path:
        return self.root / "inference" / model

    @property
    def config_path(self) -> Path:
        return self.root / "mltui.toml"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def ready_marker(self) -> Path:
        return self.root / "READY"

    def is_ready(self) -> bool:
        """Training finished in this workspace with the current layout."""
        try:
            return self.ready_marker.read_text(encoding="utf-8").strip() == FORMAT
        except OSError:
            return False

    def mark_ready(self) -> None:
        self.ready_marker.write_text(FORMAT + "\n", encoding="utf-8")

    @property
    def marker(self) -> Path:
        """Written when mltui creates the workspace; also the lock file."""
        return self.root / MARKER

    def is_workspace(self) -> bool:
        """The directory is mltui's: it has the marker, or is a workspace of an older mltui
        (READY and mlflow.db, before the marker existed)."""
        if self.marker.is_file():
            return True
        return self.ready_marker.is_file() and self.db.is_file()

    def claim(self) -> None:
        """Make ``root`` a workspace: create it, or adopt an empty directory.

        DemoError when ``root`` exists and holds anything that is not a workspace's:
        mltui never deletes a directory it did not create.
        """
        if self.root.exists() and not self.root.is_dir():
            raise DemoError(f"{self.root} is not a directory; choose an empty directory")
        if self.root.is_dir() and not self.is_workspace() and any(self.root.iterdir()):
            raise DemoError(
                f"{self.root} is not an mltui demo workspace; refusing to delete it; "
                "choose an empty directory or remove it yourself"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.marker.touch()
        except OSError as exc:
            raise DemoError(f"cannot use {self.root} as the demo workspace: {exc}") from None

    def reset(self) -> None:
        """Delete everything but the marker (``--demo-reset``); only in a claimed workspace.

        The marker stays: it is the lock file a running demo holds.
        """
        if not self.root.exists():
            return
        if not self.is_workspace():
            raise DemoError(
                f"{self.root} is not an mltui demo workspace; refusing to delete it; "
                "choose an empty directory or remove it yourself"
            )
        for entry in self.root.iterdir():
            if entry.name == MARKER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def acquire(self) -> WorkspaceLock:
        """Claim the workspace and hold it for the life of one demo.

        A second ``mltui --demo`` on the same workspace fails at once (DemoError naming
        the pid that holds it) instead of deleting the first one's run directory.
        """
        self.claim()
        # "a+": opening must not truncate the pid of a demo that holds the lock.
        handle = open(self.marker, "a+", encoding="utf-8")  # noqa: SIM115 - held by the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise DemoError(f"another mltui --demo is running on {self.root} (pid {pid})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        return WorkspaceLock(handle)


class WorkspaceLock:
    """The held lock of a workspace; ``release()`` is idempotent (the kernel also drops it
    when the process dies, even by SIGKILL)."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    @property
    def held(self) -> bool:
        return self._handle is not None

    def release(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


def default_workspace() -> Workspace:
    """``$MLTUI_DEMO_DIR`` when set (tests, experiments), else the user cache dir."""
    override = os.environ.get("MLTUI_DEMO_DIR")
    return Workspace(Path(override) if override else cache_dir() / "demo")
