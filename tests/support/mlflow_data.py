"""Build a real MLflow sqlite store whose contents the tests know exactly.

:func:`build_store` writes, into one directory, an ``mlflow.db`` sqlite store, an
``artifacts/`` tree and a ``datasets/`` tree of parquet files, then returns an
:class:`MlflowData` describing everything it created (names, versions, aliases,
metrics, params, tags, dataset digests) so tests assert against the description
instead of repeating literals.

What is in it (see :data:`MODELS`):

- ``churn-classifier``: 4 versions, ``champion`` -> 3, ``challenger`` -> 4.
- ``fraud-detector``: 2 versions, ``champion`` -> 2, no challenger.
- ``ranker``: 25 versions (more than the default ``max_versions`` of 20, so paging
  and the version cap are exercised), ``champion`` -> 2 (outside the newest 20),
  ``challenger`` -> 25.
- ``embeddings``: registered, no versions, no aliases.

Every version comes from its own run with params, metrics (``roc_auc`` and
``accuracy`` logged once; ``loss`` logged at three steps, the last one counts) and a
pandas dataset logged as a ``training`` input whose source is the parquet file it
was written to. A model version's source is the run's ``model/`` artifact
directory (a tiny file is logged there): registering from a run artifact path is
a real MLflow registration and keeps the build fast.

A fresh sqlite store runs its schema migrations on first use (~10 s here), so the
harness builds this once per session and :func:`copy_store` clones it per test.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

DB_NAME = "mlflow.db"
ARTIFACTS = "artifacts"
DATASETS = "datasets"
EXPERIMENT = "mltui-tests"


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset logged as a run input."""

    name: str
    digest: str
    source: str
    """The parquet file's path (the dataset's source URI as MLflow stores it)."""
    source_type: str
    context: str
    rows: int
    columns: tuple[str, ...]


@dataclass(frozen=True)
class VersionSpec:
    """One registered model version and the run it came from."""

    version: str
    run_id: str
    source: str
    metrics: Mapping[str, float]
    """Latest value of each metric (what ``run.data.metrics`` returns)."""
    params: Mapping[str, str]
    tags: Mapping[str, str]
    datasets: tuple[DatasetSpec, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    name: str
    tags: Mapping[str, str]
    description: str
    versions: tuple[VersionSpec, ...]
    """Oldest first (version "1" first)."""
    aliases: Mapping[str, str] = field(default_factory=dict)
    """alias -> version"""

    @property
    def champion(self) -> str | None:
        return self.aliases.get("champion")

    @property
    def challenger(self) -> str | None:
        return self.aliases.get("challenger")

    def version(self, version: str) -> VersionSpec:
        return next(v for v in self.versions if v.version == version)

    def newest(self, n: int) -> tuple[VersionSpec, ...]:
        """The ``n`` newest versions, newest first."""
        return tuple(reversed(self.versions))[:n]


@dataclass(frozen=True)
class MlflowData:
    """What :func:`build_store` created, with paths valid for one copy of the store."""

    root: Path
    models: Mapping[str, ModelSpec]
    experiment_id: str

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / ARTIFACTS

    def model(self, name: str) -> ModelSpec:
        return self.models[name]

    def rebased(self, new_root: Path) -> MlflowData:
        """The same description with every path moved from ``root`` to ``new_root``."""
        old, new = str(self.root), str(new_root)

        def move(text: str) -> str:
            return text.replace(old, new)

        models = {
            name: replace(
                spec,
                versions=tuple(
                    replace(
                        v,
                        source=move(v.source),
                        datasets=tuple(replace(d, source=move(d.source)) for d in v.datasets),
                    )
                    for v in spec.versions
                ),
            )
            for name, spec in self.models.items()
        }
        return replace(self, root=new_root, models=models)


@dataclass(frozen=True)
class _Plan:
    """What to create for one registered model."""

    name: str
    versions: int
    aliases: Mapping[str, int]
    tags: Mapping[str, str]
    description: str
    base_auc: float


MODELS: tuple[_Plan, ...] = (
    _Plan(
        "churn-classifier",
        4,
        {"champion": 3, "challenger": 4},
        {"team": "retention", "task": "classification"},
        "Predicts customer churn in the next 30 days.",
        0.80,
    ),
    _Plan(
        "fraud-detector",
        2,
        {"champion": 2},
        {"team": "risk", "task": "classification"},
        "Flags card transactions for review.",
        0.90,
    ),
    _Plan(
        "ranker",
        25,
        {"champion": 2, "challenger": 25},
        {"team": "search", "task": "ranking"},
        "Orders search results.",
        0.60,
    ),
    _Plan("embeddings", 0, {}, {"team": "platform"}, "Registered, never trained.", 0.0),
)


def _metrics(plan: _Plan, v: int) -> dict[str, float]:
    # Exact binary fractions would be nicer, but these are stored as doubles and read
    # back unchanged, so the tests compare with ==.
    return {
        "roc_auc": round(plan.base_auc + 0.01 * v, 4),
        "accuracy": round(plan.base_auc - 0.05 + 0.005 * v, 4),
        "loss": round(1.0 / (v + 1), 4),
    }


def _frame(seed: int, rows: int = 40):  # type: ignore[no-untyped-def]
    """A small deterministic training frame (different for every seed)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, rows),
            "monthly_charges": rng.normal(70.0, 20.0, rows).round(2),
            "contract": rng.choice(["month", "year", "two_year"], rows),
            "label": rng.integers(0, 2, rows),
        }
    )


def build_store(root: Path) -> MlflowData:
    """Create the store described in the module docstring under ``root``."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag, Metric, Param
    from mlflow.tracking import MlflowClient
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    root.mkdir(parents=True, exist_ok=True)
    (root / DATASETS).mkdir(exist_ok=True)
    (root / ARTIFACTS).mkdir(exist_ok=True)
    uri = f"sqlite:///{root / DB_NAME}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment_id = client.create_experiment(
        EXPERIMENT, artifact_location=(root / ARTIFACTS).as_uri()
    )

    models: dict[str, ModelSpec] = {}
    seed = 0
    for plan in MODELS:
        client.create_registered_model(
            plan.name, tags=dict(plan.tags), description=plan.description
        )
        versions: list[VersionSpec] = []
        for v in range(1, plan.versions + 1):
            seed += 1
            run = client.create_run(experiment_id, run_name=f"{plan.name}-train-{v}")
            run_id = run.info.run_id
            metrics = _metrics(plan, v)
            params = {"n_estimators": str(50 * v), "max_depth": str(2 + v % 5), "seed": str(seed)}
            history = [Metric("loss", 1.0 + s, 0, s) for s in range(2)]  # superseded values
            client.log_batch(
                run_id,
                metrics=[
                    *history,
                    *(Metric(k, val, 0, 2 if k == "loss" else 0) for k, val in metrics.items()),
                ],
                params=[Param(k, val) for k, val in params.items()],
            )

            df = _frame(seed)
            path = root / DATASETS / f"{plan.name}-v{v}.parquet"
            df.to_parquet(path, index=False)
            dataset = mlflow.data.from_pandas(df, source=str(path), name=f"{plan.name}-train-v{v}")
            # What mlflow.log_input(dataset, context="training") logs, through the client so
            # the build never touches MLflow's global fluent run state.
            client.log_inputs(
                run_id,
                datasets=[
                    DatasetInput(
                        dataset=dataset._to_mlflow_entity(),
                        tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value="training")],
                    )
                ],
            )
            # The "model": one small file in the run's model/ artifact directory.
            client.log_text(run_id, f"model {plan.name} v{v}\n", "model/MLmodel")
            client.set_terminated(run_id)

            source = f"{run.info.artifact_uri}/model"
            tags = {"validation_status": "passed" if v % 2 else "pending", "trained_by": "ci"}
            mv = client.create_model_version(plan.name, source, run_id=run_id, tags=tags)
            assert str(mv.version) == str(v), (mv.version, v)
            versions.append(
                VersionSpec(
                    version=str(mv.version),
                    run_id=run_id,
                    source=source,
                    metrics=metrics,
                    params=params,
                    tags=tags,
                    datasets=(
                        DatasetSpec(
                            name=dataset.name,
                            digest=dataset.digest,
                            source=str(path),
                            source_type=dataset._to_mlflow_entity().source_type,
                            context="training",
                            rows=len(df),
                            columns=tuple(df.columns),
                        ),
                    ),
                )
            )
        for alias, v in plan.aliases.items():
            client.set_registered_model_alias(plan.name, alias, str(v))
        by_version = {v.version: v for v in versions}
        for alias, v in plan.aliases.items():
            spec = by_version[str(v)]
            by_version[str(v)] = replace(spec, aliases=(*spec.aliases, alias))
        models[plan.name] = ModelSpec(
            name=plan.name,
            tags=dict(plan.tags),
            description=plan.description,
            versions=tuple(by_version[str(v)] for v in range(1, plan.versions + 1)),
            aliases={alias: str(v) for alias, v in plan.aliases.items()},
        )
    return MlflowData(root=root, models=models, experiment_id=experiment_id)


def copy_store(data: MlflowData, dest: Path) -> MlflowData:
    """Clone the store (db, artifacts, datasets) into ``dest`` and repoint its paths.

    The sqlite file holds absolute paths (experiment artifact location, run artifact
    URIs, model version sources, dataset sources). Every text column that mentions
    the old root is rewritten, so a copy is independent of the template: a test may
    change anything in it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(data.db_path, dest / DB_NAME)
    for sub in (ARTIFACTS, DATASETS):
        shutil.copytree(data.root / sub, dest / sub, dirs_exist_ok=True)
    _rewrite_paths(dest / DB_NAME, str(data.root), str(dest))
    return data.rebased(dest)


def _rewrite_paths(db: Path, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in every TEXT-like column of every table."""
    con = sqlite3.connect(db)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if not r[0].startswith("sqlite_")
        ]
        for table in tables:
            for _cid, column, ctype, *_ in con.execute(f'PRAGMA table_info("{table}")'):
                if any(t in (ctype or "").upper() for t in ("CHAR", "TEXT", "CLOB")):
                    con.execute(
                        f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                        f'WHERE "{column}" LIKE ?',
                        (old, new, f"%{old}%"),
                    )
        con.commit()
    finally:
        con.close()
