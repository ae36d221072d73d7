"""MLflow fixtures: a real sqlite tracking store and a real ``mlflow server``.

- ``mlflow_store_template`` (session): the store of :mod:`tests.support.mlflow_data`,
  built once (schema migrations make a fresh store slow). Treat it as read-only.
- ``mlflow_store`` (function): a private copy of the template, paths rewritten;
  ``.tracking_uri`` is ``sqlite:///…``. Mutate it freely.
- ``mlflow_server`` (session): a real ``mlflow server`` over its own copy; yields a
  :class:`~tests.support.mlflow_server.MlflowServer` (``.url``, ``.data``). Shared by
  every test in the session: do not write to it and do not kill it — start your own
  with ``start_mlflow_server`` (see ``mlflow_server_factory``) for that.
- ``mlflow_server_factory`` (function): starts extra servers on fresh copies, stopped
  after the test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.mlflow_data import MlflowData, build_store, copy_store
from tests.support.mlflow_server import MlflowServer, start_mlflow_server

# Measured once per session and printed in the terminal summary (see pytest_terminal_summary).
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="session")
def mlflow_store_template(tmp_path_factory: pytest.TempPathFactory) -> MlflowData:
    """The session's template store; never write to it (copy it with ``mlflow_store``)."""
    import warnings

    started = time.perf_counter()
    with warnings.catch_warnings():
        # MLflow warns about ambiguous local dataset sources and integer schema columns.
        warnings.simplefilter("ignore")
        data = build_store(tmp_path_factory.mktemp("mlflow-template"))
    TIMINGS["mlflow store build"] = time.perf_counter() - started
    return data


@pytest.fixture
def mlflow_store(mlflow_store_template: MlflowData, tmp_path: Path) -> MlflowData:
    """A private, writable copy of the template store for one test."""
    return copy_store(mlflow_store_template, tmp_path / "mlflow")


@pytest.fixture(scope="session")
def mlflow_server(
    mlflow_store_template: MlflowData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` (read-only by convention) shared by the session."""
    root = tmp_path_factory.mktemp("mlflow-server")
    data = copy_store(mlflow_store_template, root / "store")
    server = start_mlflow_server(data, root)
    TIMINGS["mlflow server start"] = server.started_in
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mlflow_server_factory(
    mlflow_store_template: MlflowData, tmp_path: Path
) -> Iterator[Callable[[], MlflowServer]]:
    """Start private servers (each on a fresh copy) a test may write to or kill."""
    servers: list[MlflowServer] = []

    def start() -> MlflowServer:
        root = tmp_path / f"mlflow-server-{len(servers)}"
        server = start_mlflow_server(copy_store(mlflow_store_template, root / "store"), root)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        parts = ", ".join(f"{k} {v:.1f}s" for k, v in TIMINGS.items())
        terminalreporter.write_line(f"mlflow harness: {parts}")
