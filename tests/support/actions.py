"""Helpers for the action tests: configs pointing at the test servers, object diffs."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mltui.config import Config, parse_config
from tests.support.kube_standin import Fault

# Fields the API server and its controllers change on every write: not ours.
SERVER_MANAGED = (
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.managedFields",
    'metadata.annotations["deployment.kubernetes.io/revision"]',
    "status",
)


def make_config(
    models_toml: str,
    *,
    kubeconfig: Path | None = None,
    mlflow_uri: str | None = None,
    read_only: bool = False,
    extra: str = "",
) -> Config:
    """A Config parsed from TOML (so ${VAR} expansion and validation are the real ones)."""
    head = [f"read_only = {'true' if read_only else 'false'}", extra]
    if kubeconfig is not None:
        head += ["[kubernetes]", f'kubeconfig = "{kubeconfig}"', 'timeout = "3s"']
    if mlflow_uri is not None:
        head += ["[mlflow]", f'tracking_uri = "{mlflow_uri}"', 'timeout = "2s"']
    return parse_config("\n".join([*head, models_toml]), "test-config.toml")


def leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf paths of a JSON value, written the way plans write fields."""
    out: dict[str, Any] = {}
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            simple = key.replace("_", "a").replace("-", "a").isalnum() and not key[0].isdigit()
            path = (f"{prefix}.{key}" if prefix else key) if simple else f'{prefix}["{key}"]'
            out.update(leaves(sub, path))
    elif isinstance(value, list) and value:
        for i, sub in enumerate(value):
            out.update(leaves(sub, f"{prefix}[{i}]"))
    else:
        out[prefix] = value
    return out


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every leaf that differs between two stored objects, minus server-managed fields."""
    a, b = leaves(before), leaves(after)
    out = {}
    for path in sorted(set(a) | set(b)):
        if a.get(path) == b.get(path):
            continue
        if any(
            path == m or path.startswith(m + ".") or path.startswith(m + "[")
            for m in SERVER_MANAGED
        ):
            continue
        out[path] = (a.get(path), b.get(path))
    return out


def planned_fields(plan: Any, obj: str) -> dict[str, tuple[Any, Any]]:
    """The plan's changes to one object (by "plural.group ns/name"), as path -> (old, new)."""
    return {c.field: (c.old, c.new) for c in plan.changes if c.object.split(" (")[0] == obj}


def apply_holding_first_patch(
    kube: Any, engine: Any, plan: Any, meanwhile: Callable[[], None], hold: float = 2.0
) -> Any:
    """``engine.apply(plan)``, running ``meanwhile`` while its first cluster write is on the wire.

    The stand-in holds the first PATCH for ``hold`` seconds (below the test configs'
    3 s client timeout) before processing it. That is a real interleaving: the
    engine's check of every object is behind it, the write not yet processed — the
    moment another operator's change, or an MLflow outage, lands between two writes.
    """
    before = kube.request_count(method="PATCH")
    kube.inject(Fault("slow", delay=hold, method="PATCH", times=1))
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(engine.apply, plan)
        deadline = time.monotonic() + 30
        while kube.request_count(method="PATCH") == before:
            assert not future.done(), f"the apply ended before its first write: {future.result()}"
            assert time.monotonic() < deadline, "the first write never reached the stand-in"
            time.sleep(0.02)
        meanwhile()
        return future.result(timeout=60)
