"""`mltui --demo` end to end: real MLflow store, real model server, real Prometheus
(or the scrape source without one), real traffic — and no process left behind.

The workspace is built once per session (the first test pays for training) in a
temp dir (MLTUI_DEMO_DIR), never in the developer's cache. MLTUI_DEMO_FAST=1 makes
drift start at once and the server follow aliases every second.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mltui.demo import catalog
from mltui.demo.workspace import Workspace

pytestmark = pytest.mark.slow

TAG_ENV = "MLTUI_TEST_TAG"


def _tagged_pids(tag: str) -> list[int]:
    """Processes whose environment carries ``tag`` (every demo child inherits it)."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except (OSError, IndexError):
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def _assert_no_survivors(tag: str) -> None:
    # A stopped child may need a moment to be reaped by its parent.
    deadline = time.monotonic() + 10
    while _tagged_pids(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged_pids(tag) == [], "demo processes survived mltui"


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "workspace"


def _path_without_prometheus(tmp: Path) -> str:
    """A PATH with every executable of the current one except prometheus (symlinks)."""
    bindir = tmp / "bin-no-prometheus"
    bindir.mkdir(exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not directory or not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = bindir / name
            if name == "prometheus" or link.exists() or link.is_symlink():
                continue
            link.symlink_to(os.path.join(directory, name))
    return str(bindir)


def _run_check(
    demo_dir: Path, tmp: Path, path: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    tag = uuid.uuid4().hex
    env = {
        **os.environ,
        "PATH": path,
        "MLTUI_DEMO_DIR": str(demo_dir),
        "MLTUI_DEMO_FAST": "1",
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
        TAG_ENV: tag,
    }
    done = subprocess.run(
        [sys.executable, "-m", "mltui", "--demo", "--check", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=360,
    )
    return done, tag


def _assert_live_report(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert done.returncode in (0, 1, 2), f"exit {done.returncode}\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    assert report["sources"]["prometheus"]["status"] == "ok"
    assert report["sources"]["mlflow"]["status"] == "ok"
    assert report["sources"]["drift"]["status"] == "ok"
    by_name = {m["name"]: m for m in report["models"]}
    assert set(by_name) == {m.name for m in catalog.FLEET}
    for entry in catalog.FLEET:
        model = by_name[entry.name]
        assert all(model["latency_ms"][q] is not None for q in ("p50", "p95", "p99")), model
        assert model["rps"] is not None and model["rps"] > 0, model
        assert model["versions"]["serving"] is not None, model
        assert model["versions"]["champion"] == model["versions"]["serving"], model
        # Drift starts at once in fast mode; the drifting models must show it.
        assert model["drift"] is not None and model["drift"]["share"] is not None, model
        for feature in entry.drift_features:
            assert feature in model["drift"]["drifted"], (entry.name, model["drift"])
    return report


@pytest.mark.timeout(600)
def test_demo_check_with_a_real_prometheus(demo_dir: Path, tmp_path: Path) -> None:
    """First run: trains the store, starts Prometheus (on PATH) and reports live numbers."""
    from mltui.demo.prometheus import prometheus_binary

    assert prometheus_binary(), (
        "prometheus not on PATH: apt install prometheus (brew install prometheus)"
    )
    done, tag = _run_check(demo_dir, tmp_path, os.environ["PATH"])
    _assert_live_report(done)
    config = (demo_dir / "mltui.toml").read_text()
    assert "[prometheus]" in config and "[scrape]" not in config
    _assert_no_survivors(tag)


@pytest.mark.timeout(600)
def test_demo_check_without_prometheus_scrapes_the_server(demo_dir: Path, tmp_path: Path) -> None:
    """No prometheus on PATH: the scrape source reads the server's /metrics itself."""
    path = _path_without_prometheus(tmp_path)
    done, tag = _run_check(demo_dir, tmp_path, path)
    _assert_live_report(done)
    config = (demo_dir / "mltui.toml").read_text()
    assert "[scrape]" in config and "[prometheus]" not in config
    _assert_no_survivors(tag)


# ---------------------------------------------------------------- the closed loop


def _served(url: str, model: str) -> dict[tuple[str, str], float]:
    """(track, model_version) -> requests served so far, from the server's own metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[tuple[str, str], float] = {}
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "request_predict_seconds_count"
                and sample.labels["model_name"] == model
            ):
                key = (sample.labels["track"], sample.labels["model_version"])
                out[key] = out.get(key, 0.0) + sample.value
    return out


async def _wait(predicate: object, timeout: float, what: str, pilot: object = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(predicate):  # type: ignore[arg-type]
            return
        if pilot is not None:
            await pilot.pause(0.5)  # type: ignore[attr-defined]
        else:
            await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _serving_now(url: str, model: str, track: str, version: str) -> bool:
    """``version`` answers new ``track`` requests (its counter grows over ~2 s)."""
    before = _served(url, model).get((track, version), 0.0)
    time.sleep(2.0)
    return _served(url, model).get((track, version), 0.0) > before


@pytest.fixture
def demo_env(demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    # multiprocessing's resource tracker is this test process's own (it serves every
    # process pool pytest hosts and ends with pytest): start it before the tag is set,
    # so only processes the demo and mltui start carry the tag.
    from multiprocessing import resource_tracker

    from mltui.demo.environment import DemoEnvironment

    resource_tracker.ensure_running()
    tag = uuid.uuid4().hex
    monkeypatch.setenv(TAG_ENV, tag)
    monkeypatch.setenv("MLTUI_DEMO_FAST", "1")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    env = DemoEnvironment(Workspace(demo_dir), log=lambda _msg: None)
    try:
        yield env
    finally:
        env.stop()
        _assert_no_survivors(tag)


@pytest.mark.timeout(600)
async def test_retrain_promote_rollback_loop_in_the_tui(demo_env: object) -> None:
    """retrain → a new challenger appears → promote → the server serves it → rollback.

    Driven with the TUI's own keys (T, P, B on the fleet table, Confirm in the plan
    modal); the server's metrics prove what is served after each step.
    """
    from mltui.app import make_app
    from mltui.demo.environment import DemoEnvironment
    from mltui.screens.confirm import ConfirmActionScreen
    from mltui.screens.fleet import FleetScreen

    assert isinstance(demo_env, DemoEnvironment)
    config = demo_env.start().model_copy(update={"refresh": 1.0})
    url = demo_env.server_url
    assert url is not None
    app = make_app(config)

    def registry() -> Any:
        snap = app.snapshot
        model = snap.model("cancer") if snap is not None else None
        return model.registry if model is not None else None

    async with app.run_test(size=(120, 32)) as pilot:
        await _wait(lambda: registry() is not None, 60, "the first snapshot", pilot)
        fleet = app.screen
        assert isinstance(fleet, FleetScreen)
        assert fleet.selected_model() == "cancer"
        before = registry()
        old_champion = str(before.champion)
        new = str(max(int(v.version) for v in before.versions) + 1)

        async def act(key: str) -> None:
            await pilot.press(key)
            await _wait(
                lambda: isinstance(app.screen, ConfirmActionScreen), 30, f"the {key} plan", pilot
            )
            modal = app.screen
            # A click lands on the button only once the modal has been laid out
            # (as open_modal in test_actions_tui.py waits); checked on the event loop.
            deadline = time.monotonic() + 30
            while not (modal.query("#confirm") and modal.query_one("#confirm").region.area > 0):
                assert time.monotonic() < deadline, f"the {key} plan's buttons never laid out"
                await pilot.pause(0.05)
            await pilot.pause()
            await pilot.click("#confirm")
            await _wait(
                lambda: not isinstance(app.screen, ConfirmActionScreen),
                30,
                "the modal to close",
                pilot,
            )

        await act("T")  # retrain: runs the demo's retrain command (trains on the inference log)
        await _wait(
            lambda: registry().challenger == new, 90, "the new challenger in the TUI", pilot
        )
        await _wait(
            lambda: _serving_now(url, "cancer", "canary", new), 30, f"canary traffic on v{new}"
        )

        await act("P")  # promote: champion := challenger
        await _wait(
            lambda: registry().champion == new, 30, "the promoted champion in the TUI", pilot
        )
        await _wait(
            lambda: _serving_now(url, "cancer", "stable", new), 30, f"v{new} serving stable"
        )

        await act("B")  # rollback: champion := the previous champion
        await _wait(
            lambda: registry().champion == old_champion,
            30,
            "the previous champion in the TUI",
            pilot,
        )
        await _wait(
            lambda: _serving_now(url, "cancer", "stable", old_champion),
            30,
            f"v{old_champion} serving stable again",
        )
        # And the rolled-back version no longer takes stable traffic.
        assert not await asyncio.to_thread(_serving_now, url, "cancer", "stable", new)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_no_demo_process_outlives_an_interrupted_or_killed_mltui(
    demo_dir: Path, tmp_path: Path, sig: int
) -> None:
    """Ctrl-C runs the cleanup; even SIGKILL (no cleanup can run) leaves no orphan."""
    tag = uuid.uuid4().hex
    env = {**os.environ, "MLTUI_DEMO_DIR": str(demo_dir), "MLTUI_DEMO_FAST": "1", TAG_ENV: tag}
    port_file = demo_dir / "run" / "server.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mltui", "--demo", "--check"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not port_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert port_file.exists(), "the demo server never came up"
        assert _tagged_pids(tag), "the demo started no process"
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _assert_no_survivors(tag)


def test_the_workspace_lives_in_the_user_cache_and_reset_wipes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mltui.demo.workspace import FORMAT, default_workspace

    monkeypatch.delenv("MLTUI_DEMO_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    ws = default_workspace()
    assert ws.root == tmp_path / "cache" / "mltui" / "demo"
    lock = ws.acquire()
    try:
        assert ws.marker.is_file()  # created with the workspace
        ws.mark_ready()
        (ws.root / "mlflow.db").write_bytes(b"x")
        (ws.root / "run").mkdir()
        (ws.root / "run" / "server.log").write_text("x")
        assert ws.is_ready() and ws.ready_marker.read_text().strip() == FORMAT
        ws.reset()
        # Everything but the marker (the lock file the running demo holds) is gone.
        assert [p.name for p in ws.root.iterdir()] == [".mltui-demo"]
        assert not ws.is_ready()
    finally:
        lock.release()


def _demo_cli(workspace: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLTUI_DEMO_DIR": str(workspace),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "XDG_STATE_HOME": str(tmp / "state"),
        "XDG_CACHE_HOME": str(tmp / "cache"),
    }
    return subprocess.run(
        [sys.executable, "-m", "mltui", "--demo", "--check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("reset", [False, True], ids=["demo", "demo-reset"])
def test_demo_refuses_a_directory_that_is_not_its_workspace(tmp_path: Path, reset: bool) -> None:
    """MLTUI_DEMO_DIR=<a project dir> must not empty it: exit 3, one line, nothing deleted."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')\n")
    (project / "notes.txt").write_text("keep me\n")
    # Not even a READY file of the right format makes it ours without the store next to it.
    (project / "READY").write_text("2\n")
    before = sorted(str(p.relative_to(project)) for p in project.rglob("*"))

    done = _demo_cli(project, tmp_path, *(["--demo-reset"] if reset else []))

    assert done.returncode == 3, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"mltui: {project} is not an mltui demo workspace; refusing to delete it; "
        "choose an empty directory or remove it yourself"
    ]
    assert sorted(str(p.relative_to(project)) for p in project.rglob("*")) == before
    assert (project / "src" / "main.py").read_text() == "print('mine')\n"


def test_an_empty_directory_is_claimed_and_a_workspace_of_an_older_mltui_adopted(
    tmp_path: Path,
) -> None:
    empty = Workspace(tmp_path / "empty")
    empty.root.mkdir()
    empty.claim()
    assert empty.marker.is_file() and empty.is_workspace()

    older = Workspace(tmp_path / "older")  # READY + mlflow.db, written before the marker
    older.root.mkdir()
    older.mark_ready()
    older.db.write_bytes(b"x")
    older.claim()
    assert older.marker.is_file()
    older.reset()
    assert [p.name for p in older.root.iterdir()] == [".mltui-demo"]

    stranger = Workspace(tmp_path / "stranger")
    stranger.root.mkdir()
    (stranger.root / "data.csv").write_text("a,b\n")
    from mltui.demo.errors import DemoError

    with pytest.raises(DemoError, match="is not an mltui demo workspace"):
        stranger.reset()
    assert (stranger.root / "data.csv").exists()


def test_a_second_demo_on_a_busy_workspace_fails_fast_and_touches_nothing(
    tmp_path: Path,
) -> None:
    """The first demo holds the workspace lock for its whole life; the second one says so."""
    ws = Workspace(tmp_path / "ws")
    lock = ws.acquire()  # this process plays the first, running demo
    try:
        ws.run_dir.mkdir()
        (ws.run_dir / "server.port").write_text("12345")
        started = time.monotonic()
        done = _demo_cli(ws.root, tmp_path, "--demo-reset")
        assert time.monotonic() - started < 30  # fails fast: no waiting for the lock
        assert done.returncode == 3, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"mltui: another mltui --demo is running on {ws.root} (pid {os.getpid()})"
        ]
        assert (ws.run_dir / "server.port").read_text() == "12345"
    finally:
        lock.release()
    # Released: the next demo may take it (and writes its own pid).
    again = ws.acquire()
    try:
        assert ws.marker.read_text().strip() == str(os.getpid())
    finally:
        again.release()


def test_the_generated_config_is_a_valid_mltui_config(tmp_path: Path) -> None:
    """Both variants parse, with alias targets, a retrain command and drift per model."""
    from mltui.config import parse_config
    from mltui.demo.config_template import render

    ws = Workspace(tmp_path / "ws")
    with_prom = parse_config(render(ws, prometheus_url="http://127.0.0.1:9", scrape_url=None))
    without = parse_config(render(ws, prometheus_url=None, scrape_url="http://127.0.0.1:9/metrics"))
    assert with_prom.prometheus is not None and with_prom.scrape is None
    assert without.scrape is not None and without.prometheus is None
    assert without.mlflow_uri == f"sqlite:///{ws.db}"
    for model in without.models:
        assert model.target is not None and model.target.kind == "alias"
        assert model.retrain is not None and model.retrain.command is not None
        assert model.retrain.command[-3:] == [model.name, "--workspace", str(ws.root)]
        assert model.drift is not None and model.drift.reference == "mlflow"
        assert model.drift.current == str(ws.inference_dir(model.name) / "*.parquet")
