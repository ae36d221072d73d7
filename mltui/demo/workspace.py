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
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mltui.locations import cache_dir

FORMAT = "2"
"""Bumped when the layout changes; an older workspace is rebuilt."""


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

    def reset(self) -> None:
        """Delete everything (``--demo-reset``)."""
        if self.root.exists():
            shutil.rmtree(self.root)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive use of the workspace: a second ``mltui --demo`` waits, then reuses it."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root.parent / "demo.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def default_workspace() -> Workspace:
    """``$MLTUI_DEMO_DIR`` when set (tests, experiments), else the user cache dir."""
    override = os.environ.get("MLTUI_DEMO_DIR")
    return Workspace(Path(override) if override else cache_dir() / "demo")
