"""The drift collector on real parquet/csv files, a real MLflow store and a real Prometheus.

Data is generated with known shifts (seeded), small (a few thousand rows) so Evidently
runs in about a second per model in the shared warm worker process:

- reference: 3,000 rows; ``num_shift`` N(0,1), ``num_same`` N(0,1), ``cat_same`` and
  ``cat_shift`` with categories a/b/c at 1/3 each, plus a ``request_id``.
- current: two files (parquet + csv) with a ``ts`` column over 48 h. The newest 24 h
  (the window) hold 1,440 rows: ``num_shift`` N(1,1) (normed Wasserstein ~1 >> 0.1),
  ``cat_shift`` 70/20/10 (Jensen-Shannon ~0.25 >> 0.1), the rest as the reference.
  The older 24 h are shifted on ``num_same`` by 3 sd, so a window that let them in
  would flag ``num_same``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mltui.cli import main as cli_main
from mltui.collectors.base import SourceError
from mltui.collectors.collect import FleetCollector
from mltui.collectors.drift import DEADLINE_MARGIN, FETCH_BUDGET, DriftSource
from mltui.config import Config, DriftConfig, MlflowConfig, ModelConfig, PrometheusConfig

REF_ROWS = 3000
WINDOW_ROWS = 1440  # one row per minute over the newest 24 h (inclusive edge: +1, see below)
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _frame(rng: np.random.Generator, n: int, shift: bool, old: bool = False) -> pd.DataFrame:
    cats = np.array(["a", "b", "c"])
    return pd.DataFrame(
        {
            "num_shift": rng.normal(1.0 if shift else 0.0, 1.0, n),
            "num_same": rng.normal(3.0 if old else 0.0, 1.0, n),
            "cat_same": rng.choice(cats, n),
            "cat_shift": rng.choice(cats, n, p=[0.7, 0.2, 0.1] if shift else None),
            "request_id": np.arange(n),
        }
    )


@pytest.fixture(scope="module", autouse=True)
def drift_cache_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Results are cached on disk under $XDG_CACHE_HOME: one directory for this module,
    never the developer's own (tests that count computations use their own)."""
    home = tmp_path_factory.mktemp("xdg-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("drift-data")
    rng = np.random.default_rng(7)
    _frame(rng, REF_ROWS, shift=False).to_parquet(root / "reference.parquet")
    # 2,880 rows, one a minute, ending at NOW: the window keeps ts >= NOW - 24h,
    # i.e. the newest 1,441 rows (both edges included).
    old = _frame(rng, 1439, shift=True, old=True)
    new = _frame(rng, WINDOW_ROWS + 1, shift=True)
    stamps = [NOW - timedelta(minutes=2879 - i) for i in range(2880)]
    old["ts"] = stamps[:1439]
    new["ts"] = stamps[1439:]
    (root / "current").mkdir()
    old.to_parquet(root / "current" / "part-1.parquet")
    new.to_csv(root / "current" / "part-2.csv", index=False)
    return root


def model(name: str, **drift: Any) -> ModelConfig:
    return ModelConfig(name=name, drift=DriftConfig(**drift))


def good(data: Path, name: str = "churn", **extra: Any) -> ModelConfig:
    """The well-formed model: reference.parquet against the current window."""
    settings: dict[str, Any] = {
        "reference": str(data / "reference.parquet"),
        "current": str(data / "current" / "part-*"),
        "timestamp_column": "ts",
        "window": "24h",
    }
    settings.update(extra)
    return model(name, **settings)


@pytest.fixture(scope="module")
def source() -> Iterator[DriftSource]:
    """One source (one warm worker process) shared by the module's computations."""
    src = DriftSource(Config())
    yield src
    src.close()


def poll_one(src: DriftSource, m: ModelConfig) -> Any:
    result = src.poll([m])
    assert result.status.status == "ok", result.status
    return result.values.get(m.name), result.errors.get(m.name)


# ---------------------------------------------------------------- verdicts


def test_shifted_features_are_flagged_and_unshifted_are_not(
    data: Path, source: DriftSource
) -> None:
    """Evidently's defaults (Wasserstein / Jensen-Shannon at >1,000 rows) flag exactly the shifted pair."""
    drift, error = poll_one(source, good(data))
    assert error is None
    assert set(drift.drifted) == {"num_shift", "cat_shift"}
    assert drift.share == pytest.approx(0.5)
    by = {f.column: f for f in drift.features}
    assert set(by) == {"num_shift", "num_same", "cat_same", "cat_shift"}  # no ts, no request_id
    assert by["num_shift"].method == "wasserstein" and by["num_shift"].column_type == "num"
    assert by["cat_shift"].method == "jensenshannon" and by["cat_shift"].column_type == "cat"
    assert by["num_shift"].score > 0.8 and by["num_shift"].threshold == pytest.approx(0.1)
    assert by["num_same"].score < 0.1 and not by["num_same"].drifted
    # Most drifted first: the drifted ones, then by how far past the threshold.
    assert [f.drifted for f in drift.features] == [True, True, False, False]
    assert drift.features[0].column == "num_shift"
    # The window (newest 24 h) kept 1,441 of 2,880 rows; the shifted old half stayed out.
    assert drift.current_rows == WINDOW_ROWS + 1
    assert drift.reference_rows == REF_ROWS
    assert drift.computed_at is not None and "newest current row" in (drift.note or "")
    # Histograms for the Drift tab: same bins both sides, shares summing to 1.
    h = by["cat_shift"]
    assert h.bins == ("a", "b", "c") or set(h.bins) == {"a", "b", "c"}
    assert sum(h.current_share) == pytest.approx(1.0, abs=1e-3)
    assert dict(zip(h.bins, h.current_share, strict=True))["a"] == pytest.approx(0.7, abs=0.04)
    assert len(by["num_shift"].bins) == 20 and sum(
        by["num_shift"].reference_share
    ) == pytest.approx(1.0, abs=1e-3)


def test_column_overrides_change_method_and_threshold(data: Path, source: DriftSource) -> None:
    """column_methods / column_thresholds reach Evidently per column."""
    m = good(data, column_methods={"num_same": "psi"}, column_thresholds={"num_shift": 5.0})
    drift, error = poll_one(source, m)
    assert error is None
    by = {f.column: f for f in drift.features}
    assert by["num_same"].method == "psi" and not by["num_same"].drifted
    assert by["num_shift"].threshold == 5.0 and not by["num_shift"].drifted
    assert drift.drifted == ("cat_shift",)


def test_pandas_na_in_string_columns_is_handled(
    tmp_path: Path, data: Path, source: DriftSource
) -> None:
    """pd.NA in a string-dtype column (which breaks Evidently presets) is treated as missing."""
    ref = pd.read_parquet(data / "reference.parquet")
    ref["cat_same"] = ref["cat_same"].astype("string")
    ref.loc[::10, "cat_same"] = pd.NA
    ref.to_parquet(tmp_path / "ref_na.parquet")
    drift, error = poll_one(source, good(data, reference=str(tmp_path / "ref_na.parquet")))
    assert error is None, error
    assert set(drift.drifted) == {"num_shift", "cat_shift"}


# ---------------------------------------------------------------- cache


def test_cache_avoids_recomputation(tmp_path: Path, data: Path, source: DriftSource) -> None:
    """Unchanged files and settings: no computation; a touched file or new setting: one."""
    current = tmp_path / "current"
    current.mkdir()
    for f in (data / "current").iterdir():
        (current / f.name).write_bytes(f.read_bytes())
    m = good(data, current=str(current / "part-*"))
    before = source.computations
    first, _ = poll_one(source, m)
    assert source.computations == before + 1
    second, _ = poll_one(source, m)
    assert source.computations == before + 1
    assert second is first  # the very same result object
    # Same bytes, new mtime: the file may have been rewritten, so compute again.
    stamp = time.time() + 5
    os.utime(current / "part-2.csv", (stamp, stamp))
    third, _ = poll_one(source, m)
    assert source.computations == before + 2 and third is not first
    assert third.drifted == first.drifted
    # A changed setting (threshold) is a new key too.
    poll_one(source, good(data, current=str(current / "part-*"), threshold=0.5))
    assert source.computations == before + 3


# ---------------------------------------------------------------- bad input


def _bad_inputs(root: Path, data: Path) -> dict[str, tuple[ModelConfig, str]]:
    rng = np.random.default_rng(3)
    cur = pd.read_csv(data / "current" / "part-2.csv")

    cur.iloc[0:0].to_parquet(root / "empty.parquet")
    other = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
    other.to_parquet(root / "other.parquet")
    nulls = cur.copy()
    nulls["num_same"] = np.nan
    nulls.to_parquet(root / "nulls.parquet")
    typed = cur.copy()
    typed["num_same"] = typed["num_same"].map(lambda v: f"v{v:.2f}")
    typed.to_parquet(root / "typed.parquet")
    no_ts = cur.copy()
    no_ts["ts"] = "not a time"
    no_ts.to_parquet(root / "no_ts.parquet")
    ref_path = str(data / "reference.parquet")
    return {
        "missing reference": (
            model("m1", reference=str(root / "nope.parquet"), current=ref_path),
            "reference file not found",
        ),
        "no current files": (
            model("m2", reference=ref_path, current=str(root / "none-*.parquet")),
            "no current files match",
        ),
        "empty current window": (
            model("m3", reference=ref_path, current=str(root / "empty.parquet")),
            "current window is empty",
        ),
        "unreadable timestamps": (
            model(
                "m4",
                reference=ref_path,
                current=str(root / "no_ts.parquet"),
                timestamp_column="ts",
                window="1h",
            ),
            "current window is empty: no readable timestamps",
        ),
        "no common columns": (
            model("m5", reference=ref_path, current=str(root / "other.parquet")),
            "no common columns",
        ),
        "all-null column": (
            model("m6", reference=ref_path, current=str(root / "nulls.parquet")),
            'column "num_same" is all null in the current data',
        ),
        "numeric vs text": (
            model("m7", reference=ref_path, current=str(root / "typed.parquet")),
            'column "num_same" is numeric in the reference but text/categorical',
        ),
        "configured column missing": (
            model("m8", reference=ref_path, current=ref_path, columns=["num_same", "ghost"]),
            "columns not in the reference data: ghost",
        ),
        "unknown method": (
            model("m9", reference=ref_path, current=ref_path, method="no-such-test"),
            "no-such-test",
        ),
    }


def test_each_bad_input_is_a_clear_error_on_its_model(
    tmp_path: Path, data: Path, source: DriftSource
) -> None:
    """One poll over all the bad models: each gets its own error, the good one still computes."""
    cases = _bad_inputs(tmp_path, data)
    models = [m for m, _ in cases.values()] + [good(data, name="fine")]
    started = time.perf_counter()
    result = source.poll(models)
    assert time.perf_counter() - started < 120  # never a hang
    assert result.status.status == "ok"
    for label, (m, expected) in cases.items():
        assert m.name not in result.values, label
        assert expected in result.errors[m.name], f"{label}: {result.errors[m.name]}"
    assert set(result.values["fine"].drifted) == {"num_shift", "cat_shift"}


def test_mixed_types_in_a_column_is_an_error(
    tmp_path: Path, data: Path, source: DriftSource
) -> None:
    """One current file logs a numeric column as text: the concatenated column mixes types."""
    current = tmp_path / "current"
    current.mkdir()
    (current / "part-1.parquet").write_bytes((data / "current" / "part-1.parquet").read_bytes())
    bad = pd.read_csv(data / "current" / "part-2.csv")
    bad["num_same"] = np.where(bad["num_same"] > 0, "high", "low")
    bad.to_csv(current / "part-2.csv", index=False)
    drift, error = poll_one(
        source,
        good(
            data, name="mixed", current=str(current / "part-*"), window=None, timestamp_column=None
        ),
    )
    assert drift is None
    assert 'column "num_same" mixes value types in the current data' in error


# ---------------------------------------------------------------- MLflow reference


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory, data: Path) -> dict[str, Any]:
    """A real sqlite store: "churn" v1 (champion) trained on reference.parquet (logged as
    a dataset input) with an artifact data/near.parquet drawn like the current window;
    "bare" v1 (champion) whose run logged nothing; "orphan" with no champion alias."""
    import warnings

    import mlflow

    root = tmp_path_factory.mktemp("drift-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    near = pd.read_csv(data / "current" / "part-2.csv").drop(columns=["ts"])
    near.to_parquet(root / "near.parquet")
    ref = pd.read_parquet(data / "reference.parquet")
    client = mlflow.MlflowClient(tracking_uri=uri)
    previous = mlflow.get_tracking_uri()
    previous_env = os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exp = client.create_experiment("drift", artifact_location=str(root / "artifacts"))
            with mlflow.start_run(experiment_id=exp) as run:
                dataset = mlflow.data.from_pandas(
                    ref, source=str(data / "reference.parquet"), name="churn-train"
                )
                mlflow.log_input(dataset, context="training")
                mlflow.log_artifact(str(root / "near.parquet"), artifact_path="data")
            with mlflow.start_run(experiment_id=exp) as bare_run:
                mlflow.log_param("x", 1)
        for name, run_id in (
            ("churn", run.info.run_id),
            ("bare", bare_run.info.run_id),
            ("orphan", run.info.run_id),
        ):
            client.create_registered_model(name)
            mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
            if name != "orphan":
                client.set_registered_model_alias(name, "champion", mv.version)
    finally:
        mlflow.set_tracking_uri(previous)
        # set_tracking_uri also exports $MLFLOW_TRACKING_URI, which every later Config()
        # would read (an MLflow source pointed at ./mlflow.db): put the variable back.
        if previous_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous_env
    return {"uri": uri, "run_id": run.info.run_id}


def _mlflow_config(uri: str) -> Config:
    return Config(mlflow=MlflowConfig(tracking_uri=uri))


def test_reference_mlflow_resolves_the_logged_training_dataset(
    data: Path,
    mlflow_store: dict[str, Any],
    source: DriftSource,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """reference = "mlflow": champion alias -> v1 -> its run -> the "training" dataset input."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # The shared source (its worker already has Evidently imported), pointed at MLflow.
    monkeypatch.setattr(source, "config", _mlflow_config(mlflow_store["uri"]))
    src = source
    churn = good(data, reference="mlflow")
    via_artifact = good(
        data, name="churn", reference="mlflow", reference_artifact="data/near.parquet"
    )
    drift, error = poll_one(src, churn)
    assert error is None, error
    assert drift.reference_rows == REF_ROWS
    assert set(drift.drifted) == {"num_shift", "cat_shift"}
    # The artifact holds data drawn like the current window: nothing drifts against it.
    drift2, error2 = poll_one(src, via_artifact)
    assert error2 is None, error2
    assert drift2.reference_rows == WINDOW_ROWS + 1 and drift2.drifted == ()
    downloaded = tmp_path / "cache" / "mltui" / "drift-references" / mlflow_store["run_id"]
    assert (downloaded / "data" / "near.parquet").is_file()

    errors = src.poll(
        [
            good(data, name="bare", reference="mlflow"),
            good(data, name="orphan", reference="mlflow"),
            good(data, name="ghost", reference="mlflow"),
            good(data, name="churn", reference="mlflow", reference_artifact="data/ghost.parquet"),
        ]
    ).errors
    assert "logged no dataset with a file source" in errors["bare"]
    # No alias (INVALID_PARAMETER_VALUE) and no such model (RESOURCE_DOES_NOT_EXIST) alike.
    assert 'registered model "orphan" has no champion alias' in errors["orphan"]
    assert 'registered model "ghost" has no champion alias' in errors["ghost"]
    assert 'reference artifact "data/ghost.parquet" not found' in errors["churn"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_mlflow_unreachable_is_not_reported_as_a_missing_alias(
    data: Path, source: DriftSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused connection says MLflow is unreachable, never 'has no champion alias'."""
    uri = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setattr(source, "config", _mlflow_config(uri))
    started = time.perf_counter()
    result = source.poll([good(data, name="churn", reference="mlflow")])
    assert time.perf_counter() - started < 60
    assert result.errors["churn"] == (
        f'reference = "mlflow": MLflow unreachable at {uri}: Connection refused'
    )


# ---------------------------------------------------------------- secrets


def test_worker_errors_are_redacted_with_the_parents_secrets(
    tmp_path: Path, source: DriftSource, drift_cache_home: Path
) -> None:
    """The worker process knows no registered secret: its messages are redacted in the parent
    before they reach the poll result, the memory cache and the disk cache."""
    from mltui.secrets import register

    secret = f"tok-{uuid.uuid4().hex}"
    register(secret)
    folder = tmp_path / secret  # e.g. a bucket path carrying a token
    folder.mkdir()
    (folder / "ref.parquet").write_bytes(b"this is not parquet")
    leaky = model(
        "leaky", reference=str(folder / "ref.parquet"), current=str(folder / "ref.parquet")
    )
    error = source.poll([leaky]).errors["leaky"]
    assert error.startswith("cannot read reference ") and "/***/ref.parquet" in error, error
    assert secret not in error
    assert secret not in str(source._cache["leaky"])
    stored = [p.read_text() for p in (drift_cache_home / "mltui" / "drift").glob("*.json")]
    assert any("/***/ref.parquet" in text for text in stored)
    assert not any(secret in text for text in stored)


# ---------------------------------------------------------------- disk cache


def _fresh_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty $XDG_CACHE_HOME for this test; returns the drift cache directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache" / "mltui" / "drift"


def _settings(data: Path) -> dict[str, Any]:
    return {
        "reference": str(data / "reference.parquet"),
        "current": str(data / "current" / "part-*"),
        "timestamp_column": "ts",
        "window": "24h",
    }


_SECOND_PROCESS = textwrap.dedent(
    """
    import json, multiprocessing, sys
    from mltui.collectors.drift import DriftSource
    from mltui.config import Config, DriftConfig, ModelConfig

    model = ModelConfig(name="cron", drift=DriftConfig(**json.loads(sys.argv[1])))
    source = DriftSource(Config())
    result = source.poll([model])
    print(json.dumps({
        "share": result.values["cron"].share,
        "drifted": sorted(result.values["cron"].drifted),
        "computations": source.computations,
        "worker": source._pool is not None,
        "children": len(multiprocessing.active_children()),
        "heavy": sorted(m for m in ("pandas", "evidently", "pyarrow", "mlflow") if m in sys.modules),
    }))
    """
)


def test_a_second_process_gets_the_result_from_disk(
    tmp_path: Path, data: Path, source: DriftSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a cron `mltui --check` on unchanged files gets: a hit with no computation, no
    worker process, no pandas or Evidently import. Data errors are cached the same way."""
    cache = _fresh_cache(monkeypatch, tmp_path)
    fine = model("cron", **_settings(data))
    bad = model("cron-bad", **{**_settings(data), "columns": ["num_same", "ghost"]})
    before = source.computations
    first = source.poll([fine, bad])
    assert source.computations == before + 2
    assert len(list(cache.glob("*.json"))) == 2  # written whole: no temp files left
    assert not list(cache.glob(".tmp-*"))

    second = DriftSource(Config())  # a new source knows nothing in memory
    try:
        again = second.poll([fine, bad])
        assert second.computations == 0 and second._pool is None
        assert again.values["cron"] == first.values["cron"]  # every field, histograms included
        assert again.errors["cron-bad"] == first.errors["cron-bad"]
        assert "columns not in the reference data: ghost" in again.errors["cron-bad"]
    finally:
        second.close()

    # A real second process: the hit imports neither pandas nor Evidently.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    out = subprocess.run(
        [sys.executable, "-c", _SECOND_PROCESS, json.dumps(_settings(data))],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == {
        "share": 0.5,
        "drifted": ["cat_shift", "num_shift"],
        "computations": 0,
        "worker": False,
        "children": 0,
        "heavy": [],
    }


def test_a_corrupt_disk_entry_is_a_miss(
    tmp_path: Path, data: Path, source: DriftSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half-written or foreign cache files never break a poll: they are recomputed."""
    cache = _fresh_cache(monkeypatch, tmp_path)
    m = model("corrupt", **_settings(data))
    poll_one(source, m)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"format": 1, "key": "')
    second = DriftSource(Config())
    try:
        drift, error = poll_one(second, m)
        assert second.computations == 1 and error is None
        assert set(drift.drifted) == {"num_shift", "cat_shift"}
        assert json.loads(entry.read_text())["drift"]["share"] == 0.5  # rewritten
    finally:
        second.close()


# ---------------------------------------------------------------- timing


def _copy_current(data: Path, tmp_path: Path) -> Path:
    current = tmp_path / "current"
    current.mkdir()
    for f in (data / "current").iterdir():
        (current / f.name).write_bytes(f.read_bytes())
    return current


def test_a_poll_while_another_runs_returns_at_once(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Polls never overlap: a second poll does not queue behind the first on the worker,
    it answers at once with "still computing", and nothing is computed twice."""
    _fresh_cache(monkeypatch, tmp_path)
    src = DriftSource(Config())  # a cold worker: starting it and importing Evidently takes seconds
    models = [good(data, name="one"), good(data, name="two", threshold=0.5)]
    first: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: first.update(result=src.poll(models)))
    try:
        thread.start()
        deadline = time.monotonic() + 30
        while src.computations == 0:  # the first poll's job is in the worker
            assert time.monotonic() < deadline, "the first poll never submitted its job"
            time.sleep(0.01)
        started = time.perf_counter()
        second = src.poll(models)
        assert time.perf_counter() - started < 1.0
        assert thread.is_alive()  # it really was still running
        assert second.status.status == "ok" and not second.values
        for name in ("one", "two"):
            assert "drift is still being computed" in second.errors[name], second.errors
        thread.join(120)
        assert set(first["result"].values) == {"one", "two"}, first["result"].errors
        assert src.computations == 2
    finally:
        thread.join(120)
        src.close()


def test_a_poll_ends_within_its_budget_and_a_later_one_collects_the_result(
    tmp_path: Path, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many models need computing, a poll ends by its budget (so the orchestrator
    never times the source out); the job keeps running and the next poll collects it."""
    _fresh_cache(monkeypatch, tmp_path)
    current = _copy_current(data, tmp_path)
    models = [
        good(data, name="one", current=str(current / "part-*")),
        good(data, name="two", current=str(current / "part-*"), threshold=0.5),
    ]
    src = DriftSource(Config(models=models))
    src.budget = 0.5
    assert src.deadline == 0.5 + DEADLINE_MARGIN
    collector = FleetCollector(Config(models=models), sources={"drift": src})
    try:
        started = time.perf_counter()
        snapshot = collector.collect()
        assert time.perf_counter() - started < 5  # a cold worker alone takes longer
        assert snapshot.sources["drift"].status == "ok"  # not "timed out after ..."
        for name in ("one", "two"):
            state = snapshot.model(name)
            assert state is not None and state.drift is None
            assert "drift is still being computed" in state.errors["drift"]

        src.budget = FETCH_BUDGET
        result = src.poll(models)
        assert set(result.values) == {"one", "two"}, result.errors
        assert src.computations == 2  # the running job was collected, not started again

        # New files: while they compute, the previous result stays, marked as such.
        stamp = time.time() + 5
        os.utime(current / "part-2.csv", (stamp, stamp))
        src.budget = 0.0
        newer = src.poll(models)
        assert src.computations == 3  # "two" waits for "one": never two jobs at once
        for name in ("one", "two"):
            kept = newer.values[name]
            assert kept.drifted == result.values[name].drifted
            assert (kept.note or "").endswith("newer data still computing")
    finally:
        src.close()


# ---------------------------------------------------------------- HTML export


def test_export_html_writes_a_valid_evidently_report(
    data: Path, source: DriftSource, tmp_path: Path
) -> None:
    """The saved file is Evidently's dashboard with this model's columns and verdict."""
    path = source.export_html(good(data), tmp_path / "reports" / "churn.html")
    assert path == (tmp_path / "reports" / "churn.html").resolve()
    html = path.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html[:500].lower()
    assert "drawDashboard" in html  # Evidently's renderer entry point
    assert "Drift is detected for 50.0% of columns (2 out of 4)." in html
    for column in ("num_shift", "num_same", "cat_same", "cat_shift"):
        assert f"Value Drift for column {column}" in html


def test_export_html_of_a_failing_model_raises_source_error(
    data: Path, source: DriftSource, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="no common columns"):
        everything = ["num_shift", "num_same", "cat_same", "cat_shift"]
        source.export_html(good(data, name="x", exclude=everything), tmp_path / "x.html")


# ---------------------------------------------------------------- drift_query


@pytest.fixture(scope="module")
def drift_prometheus(prometheus_factory: Callable[..., Any]) -> Any:
    """A real Prometheus holding a drift gauge: churn 0.42 from an hour ago to an hour ahead."""
    now = int(time.time())
    lines = [
        "# HELP model_drift_share Share of drifted features.",
        "# TYPE model_drift_share gauge",
    ]
    for t in range(now - 3600, now + 3600, 60):
        lines.append(f'model_drift_share{{model="churn"}} 0.42 {t}')
        lines.append(f'model_drift_share{{model="fraud"}} 0.1 {t}')
    lines.append("# EOF")
    return prometheus_factory("\n".join(lines) + "\n")


def test_drift_query_reads_the_share_from_prometheus(drift_prometheus: Any) -> None:
    config = Config(prometheus=PrometheusConfig(url=drift_prometheus.url, timeout="5s"))
    src = DriftSource(config)
    try:
        churn = model("churn", drift_query='model_drift_share{model="churn"}')
        both = model("both", drift_query="model_drift_share")
        nothing = model("nothing", drift_query='model_drift_share{model="ghost"}')
        bad = model("bad", drift_query="model_drift_share{")
        result = src.poll([churn, both, nothing, bad])
        assert result.values["churn"].share == pytest.approx(0.42)
        assert "drift_query" in (result.values["churn"].note or "")
        assert src.computations == 0 and result.status.requests == 4
        assert "returned 2 series" in result.errors["both"]
        assert "returned no value" in result.errors["nothing"]
        assert "Prometheus said 400" in result.errors["bad"]
    finally:
        src.close()


# ---------------------------------------------------------------- CLI


def test_text_table_lists_features_most_drifted_first(data: Path, source: DriftSource) -> None:
    """The text form of `mltui drift` (as_text): summary line, then one row per feature."""
    from mltui.collectors.drift_cli import as_text

    drift, _ = poll_one(source, good(data))
    text = as_text("churn", drift, "/tmp/r.html")
    lines = text.splitlines()
    assert lines[0] == "churn: drifted share 50% (2 of 4 features)"
    rows = [line for line in lines if line.startswith(("num_", "cat_"))]
    assert [r.split()[0] for r in rows[:2]] == ["num_shift", "cat_shift"]
    assert rows[0].split()[1] == "yes" and rows[-1].split()[1] == "no"
    assert "wasserstein (num)" in rows[0] and lines[-1] == "HTML report: /tmp/r.html"


def test_cli_drift_json_text_and_exit_codes(data: Path, tmp_path: Path) -> None:
    """mltui drift MODEL: 0 with the result, 2 when computing fails, 3 for an unknown model."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[[models]]
name = "churn"
[models.drift]
reference = "{data / "reference.parquet"}"
current = "{data / "current" / "part-*"}"
timestamp_column = "ts"
window = "24h"

[[models]]
name = "broken"
[models.drift]
reference = "{tmp_path / "missing.parquet"}"
current = "{data / "current" / "part-*"}"
"""
    )
    runner = CliRunner()
    html = tmp_path / "out.html"
    ok = runner.invoke(
        cli_main, ["drift", "churn", "--format", "json", "--html", str(html), "--config", str(cfg)]
    )
    assert ok.exit_code == 0, ok.output
    body = json.loads(ok.stdout)
    assert body["model"] == "churn" and body["share"] == pytest.approx(0.5)
    assert set(body["drifted"]) == {"num_shift", "cat_shift"}
    assert [f["column"] for f in body["features"]][:1] == ["num_shift"]
    assert body["html"] == str(html.resolve()) and "drawDashboard" in html.read_text()

    broken = runner.invoke(cli_main, ["drift", "broken", "--config", str(cfg)])
    assert broken.exit_code == 2 and "reference file not found" in broken.stderr
    unknown = runner.invoke(cli_main, ["drift", "ghost", "--config", str(cfg)])
    assert unknown.exit_code == 3 and 'unknown model "ghost"' in unknown.stderr


def test_cli_drift_help_documents_the_exit_codes() -> None:
    """`mltui drift --help` lists 0/2/3; a bad flag is 3 like any usage error, never 2 ("failed")."""
    runner = CliRunner()
    shown = runner.invoke(cli_main, ["drift", "--help"])
    assert shown.exit_code == 0
    text = " ".join(shown.output.split())
    assert "Exit codes:" in text
    assert "0 drift computed (or read) and printed" in text
    assert "2 computing failed" in text
    assert "3 usage or config error: a bad flag, a bad config, an unknown MODEL" in text
    bad_flag = runner.invoke(cli_main, ["drift", "churn", "--no-such-flag"])
    assert bad_flag.exit_code == 3 and "No such option" in bad_flag.output


async def test_the_tui_computes_drift_in_its_worker_process_and_exports_it(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside Textual, sys.stderr has no file descriptor; the drift worker must start anyway."""
    from textual.widgets import DataTable

    from mltui.app import make_app

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    # An empty drift cache: earlier tests stored this result, and a hit starts no worker.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    app = make_app(Config(models=[good(data)]))
    async with app.run_test(size=(120, 40)) as pilot:

        async def until(check: Callable[[], bool], seconds: float = 120) -> None:
            deadline = time.monotonic() + seconds
            while not check():
                assert time.monotonic() < deadline, "timed out"
                await pilot.pause(0.2)

        def drift() -> Any:
            state = app.snapshot.model("churn") if app.snapshot else None
            return state.drift if state else None

        await until(
            lambda: drift() is not None or bool(app.snapshot and app.snapshot.model("churn").errors)  # type: ignore[union-attr]
        )
        assert drift() is not None, app.snapshot.model("churn").errors  # type: ignore[union-attr]
        assert set(drift().drifted) == {"num_shift", "cat_shift"}
        await pilot.press("enter")
        await until(lambda: app.screen.query("#drift-table").first() is not None)
        for _ in range(3):
            await pilot.press("right_square_bracket")
        await pilot.pause()
        rows = app.screen.query_one("#drift-table", DataTable)
        assert rows.row_count == len(drift().features)
        await pilot.press("e")
        reports = tmp_path / "state" / "mltui" / "reports"

        def saved() -> str:
            found = sorted(reports.glob("churn-drift-*.html"))
            return found[0].read_text() if found else ""

        await until(lambda: "</html>" in saved(), seconds=60)  # written, not just opened
        assert "drawDashboard" in saved()  # Evidently's renderer entry point
        assert "Drift is detected for 50.0% of columns (2 out of 4)." in saved()
