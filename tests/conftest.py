"""Loads every fixture module in tests/harness/ as a plugin, so each real-server
harness (Prometheus, Alertmanager, MLflow, the Kubernetes stand-in) lives in its own file."""

from __future__ import annotations

import os
from pathlib import Path

# Tests must never pick up a developer's own config, kubeconfig or MLflow server.
os.environ.pop("MLTUI_CONFIG", None)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ["NO_COLOR"] = "1"

pytest_plugins = sorted(
    f"tests.harness.{path.stem}"
    for path in (Path(__file__).parent / "harness").glob("*.py")
    if not path.stem.startswith("_")
)
