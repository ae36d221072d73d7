"""Loads every fixture module in tests/harness/ as a plugin, so each real-server
harness (Prometheus, Alertmanager, MLflow, the Kubernetes stand-in) lives in its own file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Tests must never pick up a developer's own config, kubeconfig or MLflow server.
os.environ.pop("MLTUI_CONFIG", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ["NO_COLOR"] = "1"

pytest_plugins = sorted(
    f"tests.harness.{path.stem}"
    for path in (Path(__file__).parent / "harness").glob("*.py")
    if not path.stem.startswith("_")
)


@pytest.fixture(autouse=True)
def _isolated_secret_registry() -> Iterator[None]:
    """Each test starts with the secrets registered before it and leaves none behind.

    mltui.secrets is process-wide: a value one test registers (fuzzed header values,
    fake tokens) would otherwise mask the same words in every later test's messages.
    """
    from mltui import secrets

    with secrets._lock:
        before = set(secrets._secrets)
    yield
    with secrets._lock:
        secrets._secrets.clear()
        secrets._secrets.update(before)
