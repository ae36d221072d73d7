"""Train the demo fleet into a local MLflow store, and retrain one model on its inference log.

``build(workspace)`` fits every version of every model in :data:`catalog.FLEET` on a
dataset that ships with scikit-learn, logs params, metrics (ROC-AUC, accuracy, R²…)
and the training set (a parquet file, ``mlflow.log_input``), registers the versions
and sets the ``champion`` / ``challenger`` aliases and the canary-share tag.

``python -m mltui.demo.train --retrain MODEL`` is the demo's retrain command (the
config's ``retrain = { command = [...] }``): it fits a new version on the latest
inference log (features + ground-truth feedback), registers it and makes it the
``challenger``, so the server starts sending it canary traffic within seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from mltui.demo import catalog
from mltui.demo.catalog import PREDICTION, TARGET, TIMESTAMP, DemoModel, VersionSpec
from mltui.demo.workspace import Workspace, default_workspace

EXPERIMENT = "mltui-demo"
RETRAIN_ROWS = 2000
"""Newest inference-log rows a retrain fits on."""
SEED = 7


def quiet_mlflow() -> None:
    """Keep MLflow's startup chatter and telemetry out of the demo's logs and terminal."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    import logging

    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def load_dataset(name: str) -> Any:
    """A scikit-learn dataset as a DataFrame: feature columns (snake_case) + ``target``."""
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(c).strip().replace(" ", "_").replace("/", "_") for c in frame.columns]
    return frame.reset_index(drop=True)


def make_estimator(spec: VersionSpec, task: str) -> Any:
    """The scikit-learn estimator a version spec names."""
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    params: dict[str, Any] = dict(spec.params)
    regression = task == "regression"
    if spec.estimator == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, **params))
    if spec.estimator == "ridge":
        return make_pipeline(StandardScaler(), Ridge(**params))
    if spec.estimator == "gboost":
        cls = GradientBoostingRegressor if regression else GradientBoostingClassifier
        return cls(random_state=SEED, **params)
    if spec.estimator == "forest":
        cls = RandomForestRegressor if regression else RandomForestClassifier
        return cls(random_state=SEED, n_jobs=1, **params)
    raise ValueError(f"unknown estimator {spec.estimator!r}")


def evaluate(estimator: Any, task: str, x: Any, y: Any) -> dict[str, float]:
    """Held-out metrics: ROC-AUC + accuracy for classifiers, R² + RMSE for regressors."""
    from sklearn import metrics

    if task == "regression":
        pred = estimator.predict(x)
        return {
            "r2": float(metrics.r2_score(y, pred)),
            "rmse": float(metrics.mean_squared_error(y, pred) ** 0.5),
        }
    proba = estimator.predict_proba(x)
    out = {"accuracy": float(metrics.accuracy_score(y, estimator.predict(x)))}
    if task == "binary":
        out["roc_auc"] = float(metrics.roc_auc_score(y, proba[:, 1]))
    else:
        out["roc_auc"] = float(metrics.roc_auc_score(y, proba, multi_class="ovr"))
    return out


def _features(frame: Any) -> list[str]:
    drop = {TARGET, PREDICTION, TIMESTAMP, "track", "model_version"}
    return [c for c in frame.columns if c not in drop]


def _log_version(
    entry: DemoModel,
    spec: VersionSpec,
    train: Any,
    test: Any,
    train_path: Path,
    run_name: str,
    description: str,
) -> str:
    """Fit, log and register one version; its version number."""
    import mlflow
    from mlflow.models import infer_signature

    features = _features(train)
    estimator = make_estimator(spec, entry.task)
    estimator.fit(train[features], train[TARGET])
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({"estimator": spec.estimator, **spec.params, "rows": len(train)})
        mlflow.log_metrics(evaluate(estimator, entry.task, test[features], test[TARGET]))
        dataset = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            train, source=str(train_path), name=f"{entry.name}-{train_path.stem}", targets=TARGET
        )
        mlflow.log_input(dataset, context="training")
        signature = infer_signature(
            train[features].head(5), estimator.predict(train[features].head(5))
        )
        info = mlflow.sklearn.log_model(
            estimator,
            name="model",
            signature=signature,
            registered_model_name=entry.name,
            # Pinned requirements skip MLflow's slow dependency inference.
            pip_requirements=["scikit-learn", "pandas"],
            # cloudpickle, not MLflow's default skops: importing skops' trusted-type
            # registry alone costs ~4 s of every server start on a 2-core laptop. The
            # files are written and read only by the demo, inside the user's own cache
            # dir, so pickle's "never load untrusted files" caveat does not apply.
            serialization_format="cloudpickle",
        )
        del run
    version = str(info.registered_model_version)
    from mlflow import MlflowClient

    MlflowClient().update_model_version(entry.name, version, description=description)
    return version


def _use_workspace(ws: Workspace) -> None:
    import mlflow

    quiet_mlflow()
    mlflow.set_tracking_uri(ws.tracking_uri)
    mlflow.set_registry_uri(ws.tracking_uri)
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        # An explicit artifact root: the default (./mlruns) would land in the user's cwd.
        mlflow.create_experiment(EXPERIMENT, artifact_location=ws.artifacts.as_uri())
    mlflow.set_experiment(EXPERIMENT)


def build(ws: Workspace, log: Any = print) -> None:
    """Train and register the whole fleet into ``ws`` (which must be empty)."""
    from mlflow import MlflowClient
    from sklearn.model_selection import train_test_split

    started = time.monotonic()
    ws.root.mkdir(parents=True, exist_ok=True)
    _use_workspace(ws)
    client = MlflowClient()
    for entry in catalog.FLEET:
        frame = load_dataset(entry.dataset)
        stratify = frame[TARGET] if entry.task != "regression" else None
        train, test = train_test_split(frame, test_size=0.25, random_state=SEED, stratify=stratify)
        ws.data_dir(entry.name).mkdir(parents=True, exist_ok=True)
        frame.to_parquet(ws.dataset(entry.name), index=False)
        train.to_parquet(ws.training_set(entry.name), index=False)
        client.create_registered_model(
            entry.name, description=f"Demo model on scikit-learn's {entry.dataset} dataset."
        )
        for number, spec in enumerate(entry.versions, start=1):
            _log_version(
                entry,
                spec,
                train,
                test,
                ws.training_set(entry.name),
                run_name=f"{entry.name}-v{number}",
                description=f"{spec.estimator} {spec.params}",
            )
        client.set_registered_model_alias(entry.name, "champion", str(entry.champion))
        if entry.challenger is not None:
            client.set_registered_model_alias(entry.name, "challenger", str(entry.challenger))
        client.set_registered_model_tag(entry.name, catalog.CANARY_TAG, str(entry.canary_weight))
        log(f"  trained {entry.name}: {len(entry.versions)} versions")
    ws.mark_ready()
    log(f"  demo models ready in {time.monotonic() - started:.1f}s")


def read_inference_log(ws: Workspace, name: str, rows: int = RETRAIN_ROWS) -> Any:
    """The newest ``rows`` rows of a model's inference log (empty frame when there is none)."""
    import pandas as pd

    files = sorted(ws.inference_dir(name).glob("*.parquet"))
    frames = []
    for path in files[-24:]:  # the last day at most
        try:
            frames.append(pd.read_parquet(path))
        except Exception:  # noqa: BLE001 - a file being replaced right now: skip it
            continue
    if not frames:
        return pd.DataFrame()
    log = pd.concat(frames, ignore_index=True)
    if TIMESTAMP in log.columns:
        log = log.sort_values(TIMESTAMP)
    return log.tail(rows).reset_index(drop=True)


def retrain(ws: Workspace, name: str, log: Any = print) -> str:
    """Fit a new version of ``name`` on its latest inference log; register it as challenger."""
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.model_selection import train_test_split

    entry = catalog.model(name)
    if not ws.is_ready():
        raise SystemExit(f"no demo workspace at {ws.root}: run mltui --demo first")
    _use_workspace(ws)
    reference = pd.read_parquet(ws.training_set(name))
    features = _features(reference)
    recent = read_inference_log(ws, name)
    usable = recent[[*features, TARGET]].dropna() if len(recent) else recent
    # Too little feedback yet: top it up with the original training rows.
    if len(usable) < 100:
        usable = pd.concat([usable, reference[[*features, TARGET]]], ignore_index=True)
    stratify = usable[TARGET] if entry.task != "regression" else None
    try:
        train, test = train_test_split(usable, test_size=0.2, random_state=SEED, stratify=stratify)
    except ValueError:  # a class too rare to stratify
        train, test = train_test_split(usable, test_size=0.2, random_state=SEED)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = ws.data_dir(name) / f"retrain-{stamp}.parquet"
    train.to_parquet(path, index=False)
    spec = entry.versions[-1]
    version = _log_version(
        entry,
        spec,
        train,
        test,
        path,
        run_name=f"{name}-retrain-{stamp}",
        description=f"retrained on {len(recent)} inference-log rows",
    )
    client = MlflowClient()
    client.set_registered_model_alias(name, "challenger", version)
    tags = client.get_registered_model(name).tags
    if not str(tags.get(catalog.CANARY_TAG, "0")).isdigit() or tags.get(catalog.CANARY_TAG) == "0":
        client.set_registered_model_tag(name, catalog.CANARY_TAG, "20")
    log(f"registered {name} version {version} as challenger ({len(train)} rows)")
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mltui.demo.train", description="Train or retrain the mltui demo models."
    )
    parser.add_argument("--retrain", metavar="MODEL", help="retrain MODEL on its inference log")
    parser.add_argument(
        "--workspace", metavar="DIR", help="demo workspace (default: the cache dir)"
    )
    args = parser.parse_args(argv)
    ws = Workspace(Path(args.workspace)) if args.workspace else default_workspace()
    if args.retrain:
        try:
            catalog.model(args.retrain)
        except KeyError:
            known = ", ".join(m.name for m in catalog.FLEET)
            print(f"unknown demo model {args.retrain!r} (known: {known})", file=sys.stderr)
            return 2
        retrain(ws, args.retrain)
        return 0
    if ws.is_ready():
        print(f"demo models already trained in {ws.root}")
        return 0
    build(ws)
    return 0


if __name__ == "__main__":
    sys.exit(main())
