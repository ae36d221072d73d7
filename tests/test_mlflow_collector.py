"""The MLflow collector against a real sqlite store and a real ``mlflow server``.

Expected values come from the store's description (tests/support/mlflow_data.py),
never from the collector itself.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from mltui.collectors.mlflow import MlflowSource
from mltui.config import Config
from mltui.fleet import Registry
from tests.support.mlflow_data import MlflowData, ModelSpec, copy_store
from tests.support.mlflow_server import MlflowServer, start_mlflow_server
from tests.support.procs import free_port

POLICY_VARS = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER",
)


@pytest.fixture(autouse=True)
def _restore_mlflow_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector sets MLflow's process-wide HTTP policy; undo it after each test."""
    for name in POLICY_VARS:
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)


def make_config(
    uri: str,
    models: list[str],
    *,
    timeout: str = "5s",
    max_versions: int = 20,
) -> Config:
    return Config.model_validate(
        {
            "mlflow": {"tracking_uri": uri, "timeout": timeout, "max_versions": max_versions},
            "models": [{"name": f"m-{name}", "registered_model": name} for name in models],
        }
    )


@pytest.fixture(params=["sqlite", "rest"])
def backend(request: pytest.FixtureRequest) -> tuple[str, MlflowData]:
    """(tracking URI, data description): a sqlite copy, or the session's mlflow server."""
    if request.param == "sqlite":
        data: MlflowData = request.getfixturevalue("mlflow_store")
        return data.tracking_uri, data
    server: MlflowServer = request.getfixturevalue("mlflow_server")
    return server.url, server.data


def expected_versions(spec: ModelSpec, max_versions: int) -> list[str]:
    """Newest ``max_versions`` versions plus any aliased version below them, newest first."""
    newest = [v.version for v in spec.newest(max_versions)]
    extra = {v for v in spec.aliases.values() if v not in newest}
    return sorted({*newest, *extra}, key=int, reverse=True)


def assert_registry_matches(registry: Registry, spec: ModelSpec, max_versions: int) -> None:
    assert registry.name == spec.name
    assert dict(registry.aliases) == dict(spec.aliases)
    assert registry.champion == spec.champion
    assert registry.challenger == spec.challenger
    assert dict(registry.tags) == dict(spec.tags)
    assert [v.version for v in registry.versions] == expected_versions(spec, max_versions)
    for got in registry.versions:
        want = spec.version(got.version)
        assert got.run_id == want.run_id
        assert got.source == want.source
        assert got.status == "READY"
        assert got.created is not None and got.created.tzinfo is not None
        assert dict(got.tags) == dict(want.tags)
        assert sorted(got.aliases) == sorted(want.aliases)
        assert dict(got.metrics) == dict(want.metrics)
        assert dict(got.params) == dict(want.params)
        assert len(got.datasets) == len(want.datasets) == 1
        ds, wds = got.datasets[0], want.datasets[0]
        assert (ds.name, ds.digest, ds.source, ds.source_type, ds.context) == (
            wds.name,
            wds.digest,
            wds.source,
            wds.source_type,
            wds.context,
        )


def test_versions_aliases_metrics_and_lineage(backend: tuple[str, MlflowData]) -> None:
    """Every registered model comes back as built: versions newest first, aliases, run
    metrics/params, version tags and the training dataset's digest and parquet path."""
    uri, data = backend
    names = ["churn-classifier", "fraud-detector", "ranker", "embeddings"]
    source = MlflowSource(make_config(uri, names))
    result = source.poll(source.config.models)

    assert result.status.status == "ok", result.status.error
    assert result.errors == {}
    for name in names:
        assert_registry_matches(result.values[f"m-{name}"], data.model(name), 20)
    churn = result.values["m-churn-classifier"]
    # champion / challenger are distinct versions, each carrying its alias.
    assert churn.version(churn.champion).aliases == ("champion",)  # type: ignore[union-attr]
    assert churn.version(churn.challenger).aliases == ("challenger",)  # type: ignore[union-attr]
    # ranker has 25 versions: the newest 20 plus its old champion (v2) below the window.
    ranker = result.values["m-ranker"]
    assert len(ranker.versions) == 21
    assert ranker.versions[-1].version == "2" == ranker.champion
    assert ranker.version("2").metrics == data.model("ranker").version("2").metrics  # type: ignore[union-attr]
    assert result.values["m-embeddings"].versions == ()
    # The dataset source is the parquet file the frame was written to.
    ds = churn.version("3").datasets[0]  # type: ignore[union-attr]
    assert ds.source is not None and os.path.isfile(ds.source)


def test_paging_follows_page_tokens(backend: tuple[str, MlflowData]) -> None:
    """With a page of 3 and max_versions 7, versions arrive over 3 pages and exactly the
    newest 7 (plus the old champion) are read; the request count shows the paging."""
    uri, data = backend
    source = MlflowSource(make_config(uri, ["ranker"], max_versions=7))
    source.page_size = 3
    result = source.poll(source.config.models)

    assert result.status.status == "ok", result.status.error
    registry = result.values["m-ranker"]
    assert [v.version for v in registry.versions] == ["25", "24", "23", "22", "21", "20", "19", "2"]
    assert_registry_matches(registry, data.model("ranker"), 7)
    # 1 registered-model search + 3 version pages (3+3+1) + 1 out-of-window champion
    # + 8 runs.
    assert result.status.requests == 1 + 3 + 1 + 8
    assert source.run_fetches == 8


def test_versions_cached_aliases_and_tags_reread(mlflow_store: MlflowData) -> None:
    """Run facts are fetched once; later polls re-read only one page of registered models
    and one of versions (for both models together), yet see a moved alias, a new tag and
    a new version at once."""
    from mlflow.tracking import MlflowClient

    names = ["churn-classifier", "fraud-detector"]
    source = MlflowSource(make_config(mlflow_store.tracking_uri, names))
    first = source.poll(source.config.models)
    assert first.status.status == "ok", first.status.error
    runs = sum(len(mlflow_store.model(n).versions) for n in names)
    assert source.run_fetches == runs
    assert first.status.requests == 2 + runs

    second = source.poll(source.config.models)
    assert second.status.requests == 2  # no run re-fetched
    assert source.run_fetches == runs
    assert second.values == first.values

    client = MlflowClient(mlflow_store.tracking_uri, mlflow_store.tracking_uri)
    client.set_registered_model_alias("churn-classifier", "champion", "4")
    client.set_registered_model_tag("churn-classifier", "owner", "ana")
    client.set_model_version_tag("fraud-detector", "1", "validation_status", "failed")
    third = source.poll(source.config.models)
    churn = third.values["m-churn-classifier"]
    assert churn.champion == "4" and churn.challenger == "4"
    assert sorted(churn.version("4").aliases) == ["challenger", "champion"]  # type: ignore[union-attr]
    assert churn.version("3").aliases == ()  # type: ignore[union-attr]
    assert churn.tags["owner"] == "ana"
    fraud = third.values["m-fraud-detector"]
    assert fraud.version("1").tags["validation_status"] == "failed"  # type: ignore[union-attr]
    assert third.status.requests == 2
    assert source.run_fetches == runs

    # A new version: exactly one new run fetched, and it comes first.
    run = client.create_run(mlflow_store.experiment_id)
    client.log_metric(run.info.run_id, "roc_auc", 0.95)
    client.set_terminated(run.info.run_id)
    client.create_model_version("fraud-detector", f"{run.info.artifact_uri}/model", run.info.run_id)
    fourth = source.poll(source.config.models)
    fraud = fourth.values["m-fraud-detector"]
    assert fraud.versions[0].version == "3"
    assert fraud.versions[0].metrics == {"roc_auc": 0.95}
    assert source.run_fetches == runs + 1
    assert fourth.status.requests == 2 + 1


def test_missing_registered_model_is_a_model_error(backend: tuple[str, MlflowData]) -> None:
    """A registered model that does not exist is that model's error; the others arrive
    and the source itself is ok."""
    uri, data = backend
    source = MlflowSource(make_config(uri, ["churn-classifier", "no-such-model", "fraud-detector"]))
    result = source.poll(source.config.models)

    assert result.status.status == "ok", result.status.error
    assert result.errors == {"m-no-such-model": "registered model no-such-model not found"}
    assert set(result.values) == {"m-churn-classifier", "m-fraud-detector"}
    assert_registry_matches(result.values["m-fraud-detector"], data.model("fraud-detector"), 20)


def test_discover_lists_every_registered_model(backend: tuple[str, MlflowData]) -> None:
    """discover() pages through search_registered_models and names each model after itself."""
    uri, data = backend
    source = MlflowSource(make_config(uri, []))
    source.registry_page_size = 3  # 4 models: two pages
    found = source.discover()
    assert sorted(m.name for m in found) == sorted(data.models)
    assert all(m.registered_model == m.name for m in found)
    assert source.requests >= 2


def test_killed_server_is_a_source_error_within_seconds(
    mlflow_server_factory: Callable[[], MlflowServer],
) -> None:
    """A server that dies between polls: the next poll fails fast, with a clear error."""
    server = mlflow_server_factory()
    source = MlflowSource(make_config(server.url, ["churn-classifier"], timeout="2s"))
    ok = source.poll(source.config.models)
    assert ok.status.status == "ok", ok.status.error

    server.kill()
    started = time.perf_counter()
    failed = source.poll(source.config.models)
    elapsed = time.perf_counter() - started

    assert failed.status.status == "error"
    assert failed.status.error == f"MLflow at {server.url}: connection refused"
    assert failed.values == {}
    assert elapsed < 3.0
    assert elapsed < source.deadline


def test_hung_server_times_out_within_deadline() -> None:
    """A server that accepts connections and never answers: bounded by MLflow's
    per-request timeout (set from [mlflow] timeout) and one retry — not 120 s x 7."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # the kernel completes handshakes; nobody ever answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        source = MlflowSource(make_config(url, ["churn-classifier"], timeout="1s"))
        started = time.perf_counter()
        result = source.poll(source.config.models)
        elapsed = time.perf_counter() - started

    assert result.status.status == "error"
    assert result.status.error == f"MLflow at {url} did not answer within 1s"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert 1.0 <= elapsed < source.deadline == 4.0


def test_unreachable_port_and_secrets_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listening: an error in well under a second; neither the token nor the
    URL's password appears in it."""
    token = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    url = f"http://ops:hunter2-secret@127.0.0.1:{free_port()}"
    source = MlflowSource(make_config(url, ["churn-classifier"]))
    started = time.perf_counter()
    result = source.poll(source.config.models)
    elapsed = time.perf_counter() - started

    assert result.status.status == "error"
    error = result.status.error or ""
    assert "connection refused" in error
    assert token not in error and "hunter2-secret" not in error
    assert elapsed < 2.0
    with pytest.raises(Exception) as raised:
        source.discover()
    assert token not in str(raised.value) and "hunter2-secret" not in str(raised.value)


def test_missing_sqlite_file_is_an_error_and_creates_nothing(tmp_path: Any) -> None:
    """MLflow would create (and migrate) an empty store at a wrong path; we refuse."""
    db = tmp_path / "nope" / "mlflow.db"
    source = MlflowSource(make_config(f"sqlite:///{db}", ["churn-classifier"]))
    result = source.poll(source.config.models)
    assert result.status.status == "error"
    assert result.status.error == f"MLflow sqlite store not found: {db}"
    assert not db.exists()


def test_importing_the_collector_does_not_import_mlflow() -> None:
    """mlflow is imported on the first poll, not when the module is imported."""
    code = (
        "import sys, mltui.collectors.mlflow, mltui.collectors.mlflow_client\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported at module level'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_fleet_collector_merges_registries_and_model_errors(mlflow_store: MlflowData) -> None:
    """Through the orchestrator: registries land on their models, a missing registered
    model is that model's "mlflow" error, and the mlflow source reports ok."""
    from mltui.collectors.collect import FleetCollector

    config = make_config(mlflow_store.tracking_uri, ["churn-classifier", "gone"])
    collector = FleetCollector(config)
    try:
        snapshot = collector.collect()
    finally:
        collector.close()

    assert snapshot.source("mlflow").status == "ok"
    churn = snapshot.model("m-churn-classifier")
    assert churn is not None and churn.registry is not None
    assert churn.registry.champion == mlflow_store.model("churn-classifier").champion
    assert churn.serving_version == churn.registry.champion  # no cluster target: the champion
    gone = snapshot.model("m-gone")
    assert gone is not None and gone.registry is None
    assert gone.errors == {"mlflow": "registered model gone not found"}


def test_discovery_through_the_orchestrator(mlflow_store: MlflowData) -> None:
    """With no [[models]], every registered model becomes a model of the fleet."""
    from mltui.collectors.collect import FleetCollector

    config = make_config(mlflow_store.tracking_uri, [])
    collector = FleetCollector(config)
    try:
        snapshot = collector.collect()
    finally:
        collector.close()

    assert sorted(m.name for m in snapshot.models) == sorted(mlflow_store.models)
    for state in snapshot.models:
        assert state.registry is not None
        assert dict(state.registry.aliases) == dict(mlflow_store.model(state.name).aliases)


# ---------------------------------------------------------------------- a fleet of 500

BULK = 500
BULK_TEMPLATE = "fraud-detector"
REGISTRY_TABLES = (
    "registered_models",
    "model_versions",
    "registered_model_tags",
    "model_version_tags",
    "registered_model_aliases",
)


def bulk_name(i: int) -> str:
    return f"bulk-{i:04d}"


def clone_models(db: Path, template: str, names: Sequence[str]) -> None:
    """Copy every registry row MLflow wrote for ``template`` under each of ``names``.

    Creating 500 models through MlflowClient takes minutes; copying the rows MLflow's
    own calls wrote (every column, whatever the schema version, only the name changed)
    takes a fraction of a second. Clone ``i`` then gets its own ``team`` tag
    (``team-<i>``) and its champion alias on version ``2 - i % 2``.
    """
    con = sqlite3.connect(db)
    try:
        with con:
            for table in REGISTRY_TABLES:
                columns = [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]
                listed = ", ".join(f'"{c}"' for c in columns)
                picked = ", ".join("?" if c == "name" else f'"{c}"' for c in columns)
                sql = f'INSERT INTO "{table}" ({listed}) SELECT {picked} FROM "{table}" WHERE name = ?'
                con.executemany(sql, [(name, template) for name in names])
            con.executemany(
                "UPDATE registered_model_tags SET value = ? WHERE name = ? AND key = 'team'",
                [(f"team-{i}", name) for i, name in enumerate(names)],
            )
            con.executemany(
                "UPDATE registered_model_aliases SET version = ? "
                "WHERE name = ? AND alias = 'champion'",
                [(2 - i % 2, name) for i, name in enumerate(names)],
            )
    finally:
        con.close()


@pytest.fixture(scope="module")
def bulk_store(
    mlflow_store_template: MlflowData, tmp_path_factory: pytest.TempPathFactory
) -> MlflowData:
    """The test store plus 500 clones of fraud-detector (read-only: shared by the module)."""
    data = copy_store(mlflow_store_template, tmp_path_factory.mktemp("mlflow-bulk"))
    clone_models(data.db_path, BULK_TEMPLATE, [bulk_name(i) for i in range(BULK)])
    return data


@pytest.fixture(scope="module")
def bulk_server(
    bulk_store: MlflowData, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """A real ``mlflow server`` over :func:`bulk_store`."""
    server = start_mlflow_server(bulk_store, tmp_path_factory.mktemp("mlflow-bulk-server"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "rest"])
def bulk_backend(request: pytest.FixtureRequest) -> tuple[str, MlflowData]:
    data: MlflowData = request.getfixturevalue("bulk_store")
    if request.param == "sqlite":
        return data.tracking_uri, data
    server: MlflowServer = request.getfixturevalue("bulk_server")
    return server.url, data


def test_requests_grow_with_pages_not_models(bulk_backend: tuple[str, MlflowData]) -> None:
    """10 models and 500 models: a steady-state poll costs 2 requests at 10 (one
    registered-model search, one version search) and 3 at 500 (one page listing the
    whole 504-model registry, two version searches: 500 names do not fit one URL),
    where the old per-model reads took 20 and 1,000. Every clone's aliases, tags and
    versions arrive exactly."""
    from mltui.collectors.mlflow_client import name_chunks

    uri, data = bulk_backend
    template = data.model(BULK_TEMPLATE)
    counts: dict[int, int] = {}
    for n in (10, BULK):
        names = [bulk_name(i) for i in range(n)]
        source = MlflowSource(make_config(uri, names, timeout="60s"))
        warm = source.poll(source.config.models)
        assert warm.status.status == "ok", warm.status.error
        assert source.run_fetches == len(template.versions)  # clones share the runs
        result = source.poll(source.config.models)
        assert result.status.status == "ok", result.status.error
        assert result.errors == {}
        counts[n] = result.status.requests
        for i, name in enumerate(names):
            registry = result.values[f"m-{name}"]
            champion = str(2 - i % 2)
            assert dict(registry.aliases) == {**template.aliases, "champion": champion}
            assert dict(registry.tags) == {**template.tags, "team": f"team-{i}"}
            assert [v.version for v in registry.versions] == ["2", "1"]
            assert registry.version(champion).aliases == ("champion",)  # type: ignore[union-attr]
            assert [v.metrics for v in registry.versions] == [
                template.version(v).metrics for v in ("2", "1")
            ]
        if n == BULK:
            assert len(name_chunks(names)) == 2
    assert counts == {10: 2, BULK: 3}


def test_a_model_with_many_versions_costs_no_extra_pages(
    backend: tuple[str, MlflowData],
) -> None:
    """ranker has 25 versions; with max_versions 3 and pages of 5, the one version page
    (fraud-detector's 2, then ranker's 25, 24, 23) ends inside ranker once it has its 3:
    the search stops there instead of paging through ranker's other 22 versions."""
    uri, data = backend
    source = MlflowSource(make_config(uri, ["ranker", "fraud-detector"], max_versions=3))
    source.page_size = 5
    first = source.poll(source.config.models)
    assert first.status.status == "ok", first.status.error
    assert_registry_matches(first.values["m-ranker"], data.model("ranker"), 3)
    assert_registry_matches(first.values["m-fraud-detector"], data.model("fraud-detector"), 2)
    second = source.poll(source.config.models)
    # registered models 1 + versions 1 + ranker's old champion (v2, below the newest 3) 1
    assert second.status.requests == 3
    assert second.values == first.values


def test_a_registry_bigger_than_a_page_is_searched_by_name(
    backend: tuple[str, MlflowData],
) -> None:
    """When the fleet's names need several filters, the first poll lists one page of the
    registry; that page has a next page (the registry is bigger), so the names it did not
    hold are searched by name, and later polls search by name only. Versions come in one
    search per chunk of names. Values are exact either way."""
    uri, data = backend
    names = ["churn-classifier", "fraud-detector", "ranker", "embeddings"]
    source = MlflowSource(make_config(uri, names))
    # Each chunk: "name IN (…)" URL-encoded within 60 characters, i.e. chunks
    # [churn-classifier], [fraud-detector, ranker], [embeddings].
    source.filter_chars = 60
    source.registry_page_size = 2
    first = source.poll(source.config.models)
    assert first.status.status == "ok", first.status.error
    for name in names:
        assert_registry_matches(first.values[f"m-{name}"], data.model(name), 20)
    # listing (churn-classifier, embeddings; a next page) + [fraud-detector, ranker]
    # + 3 version searches + ranker's old champion + the runs.
    assert first.status.requests == 2 + 3 + 1 + source.run_fetches
    second = source.poll(source.config.models)
    assert second.status.requests == 3 + 3 + 1  # by name only, no listing
    assert second.values == first.values


def test_a_name_with_both_quote_kinds_is_that_models_error(mlflow_store: MlflowData) -> None:
    """MLflow's search syntax cannot quote a name holding both ' and ": that model gets
    an error saying so, the others arrive."""
    odd = 'it\'s "odd"'
    source = MlflowSource(make_config(mlflow_store.tracking_uri, ["fraud-detector", odd]))
    result = source.poll(source.config.models)
    assert result.status.status == "ok", result.status.error
    assert result.errors == {
        f"m-{odd}": f"registered model {odd}: a name with both ' and \" cannot be searched"
    }
    assert_registry_matches(
        result.values["m-fraud-detector"], mlflow_store.model("fraud-detector"), 20
    )
