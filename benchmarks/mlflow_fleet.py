"""An MLflow registry with the benchmark fleet's N registered models (cached on disk).

Each model gets two versions (1 and 2), ``champion`` -> 1 and ``challenger`` -> 2,
created through the real ``MlflowClient`` on a sqlite store. That costs ~0.25 s
per model on a 2-core machine (plus ~15 s of schema migrations for a fresh store),
so the store is built once and kept in the cache directory; later runs copy it.
Versions have no source run: the collector caches run facts after the first poll,
so runs would only change the first refresh, which the benchmark does not time.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

from benchmarks.fleet_data import model_name
from tests.support.mlflow_data import ARTIFACTS, DATASETS, DB_NAME, MlflowData, copy_store

LAYOUT = 1
"""Bump when what the store holds changes, so stale caches are rebuilt."""


def _build(root: Path, n: int, progress: bool) -> None:
    from mlflow.tracking import MlflowClient

    root.mkdir(parents=True, exist_ok=True)
    (root / ARTIFACTS).mkdir(exist_ok=True)
    (root / DATASETS).mkdir(exist_ok=True)  # copy_store copies it
    uri = f"sqlite:///{root / DB_NAME}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    started = time.perf_counter()
    for i in range(n):
        name = model_name(i)
        client.create_registered_model(name, tags={"team": "ml-platform"})
        for v in (1, 2):
            client.create_model_version(
                name, (root / ARTIFACTS / name / f"v{v}").as_uri(), tags={"trained_by": "ci"}
            )
        client.set_registered_model_alias(name, "champion", "1")
        client.set_registered_model_alias(name, "challenger", "2")
        if progress and (i + 1) % 100 == 0:
            rate = (time.perf_counter() - started) / (i + 1)
            print(f"  mlflow registry: {i + 1}/{n} models ({rate:.2f} s/model)", flush=True)


def _size(marker: Path) -> int:
    return int(marker.parent.name.split("-")[1])


def registry_store(n: int, cache: Path, dest: Path, progress: bool = True) -> MlflowData:
    """A private copy (in ``dest``) of a cached store holding models 0..n-1 (or more:
    the smallest cached store with at least n models is reused)."""
    template = cache / f"mlflow-{n}-v{LAYOUT}"
    for done in sorted(cache.glob(f"mlflow-*-v{LAYOUT}/complete"), key=_size):
        if _size(done) >= n:
            template = done.parent
            break
    if not (template / "complete").exists():
        shutil.rmtree(template, ignore_errors=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _build(template, n, progress)
        (template / "complete").write_text(str(n))
    data = MlflowData(root=template, models={}, experiment_id="0")
    return copy_store(data, dest)
