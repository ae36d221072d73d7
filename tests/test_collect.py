"""The orchestrator: sources poll concurrently, each bounded by its deadline; failures are
values; a failed poll keeps the last good data, marked stale.

These tests exercise FleetCollector itself, so its sources here are small real Source
subclasses with scripted behaviour (the real collectors have their own tests against
real servers).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence

from mltui.collectors import FleetCollector
from mltui.collectors.base import Source, SourceError
from mltui.config import ModelConfig, parse_config
from mltui.fleet import Registry, Traffic, TrafficStats

CONFIG = parse_config(
    """
[[models]]
name = "churn"
target = { kind = "alias" }

[[models]]
name = "fraud"
"""
)


class Hang:
    """An answer that blocks until released, then returns ``value``."""

    def __init__(self, value: dict[str, object]) -> None:
        self.value = value
        self.release = threading.Event()


class Scripted(Source[object]):
    """A source whose next answers are given by the test."""

    def __init__(self, name: str, answers: list[object], deadline: float = 2.0) -> None:
        super().__init__(CONFIG)
        self.name = name  # type: ignore[misc]
        self.answers = answers
        self._deadline = deadline
        self.release = threading.Event()
        self.fetches = 0

    @property
    def deadline(self) -> float:
        return self._deadline

    def fetch(self, models: Sequence[ModelConfig]) -> tuple[dict[str, object], dict[str, str]]:
        self.fetches += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Hang):
            answer.release.wait(30)
            return dict(answer.value), {}
        if answer == "hang":
            self.release.wait(30)
            return {}, {}
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, dict)
        return dict(answer), {}


def traffic(rps: float) -> Traffic:
    return Traffic(overall=TrafficStats(rps=rps))


def test_a_hanging_source_is_cut_at_its_deadline_and_the_others_still_arrive():
    prom = Scripted("prometheus", [{"churn": traffic(5.0), "fraud": traffic(1.0)}])
    mlflow = Scripted("mlflow", ["hang"], deadline=0.5)
    collector = FleetCollector(CONFIG, {"prometheus": prom, "mlflow": mlflow})
    started = time.perf_counter()
    snap = collector.collect()
    elapsed = time.perf_counter() - started
    mlflow.release.set()
    assert elapsed < 1.5
    assert snap.sources["mlflow"].status == "error"
    assert "timed out after 0.5s" in (snap.sources["mlflow"].error or "")
    assert snap.sources["prometheus"].status == "ok"
    churn = snap.model("churn")
    assert churn is not None and churn.traffic is not None and churn.traffic.overall.rps == 5.0
    assert churn.registry is None and "mlflow" in churn.errors


def test_a_failed_poll_keeps_the_last_good_data_marked_stale_and_recovers():
    prom = Scripted(
        "prometheus",
        [
            {"churn": traffic(5.0), "fraud": traffic(1.0)},
            SourceError("connection refused"),
            {"churn": traffic(6.0), "fraud": traffic(2.0)},
        ],
    )
    collector = FleetCollector(CONFIG, {"prometheus": prom})
    first = collector.collect()
    assert first.sources["prometheus"].fetched_at is not None

    second = collector.collect()
    churn = second.model("churn")
    assert churn is not None and churn.traffic is not None
    assert churn.traffic.overall.rps == 5.0  # stale beats blank
    assert churn.stale == {"prometheus"}
    assert churn.errors["prometheus"] == "connection refused"
    status = second.sources["prometheus"]
    assert status.status == "error" and status.error == "connection refused"
    assert status.fetched_at == first.sources["prometheus"].fetched_at  # age of what is shown

    third = collector.collect()
    churn = third.model("churn")
    assert churn is not None and churn.traffic is not None and churn.traffic.overall.rps == 6.0
    assert churn.stale == frozenset() and "prometheus" not in churn.errors


def test_sources_not_polled_keep_their_values_and_unconfigured_ones_say_so():
    prom = Scripted("prometheus", [{"churn": traffic(5.0), "fraud": traffic(1.0)}])
    mlflow = Scripted("mlflow", [{"churn": Registry(name="churn", aliases={"champion": "3"})}])
    collector = FleetCollector(CONFIG, {"prometheus": prom, "mlflow": mlflow})
    collector.collect()
    prom.answers = [{"churn": traffic(9.0), "fraud": traffic(1.0)}]
    mlflow.answers = [RuntimeError("must not be polled")]
    snap = collector.collect(only=["prometheus"])
    churn = snap.model("churn")
    assert churn is not None and churn.registry is not None and churn.registry.champion == "3"
    assert churn.traffic is not None and churn.traffic.overall.rps == 9.0
    assert snap.sources["kubernetes"].status == "not_configured"
    assert snap.sources["alertmanager"].status == "not_configured"


def test_alias_targets_read_their_rollout_from_the_registry():
    registry = Registry(
        name="churn",
        aliases={"champion": "3", "challenger": "4"},
        tags={"mltui.canary_weight": "10"},
    )
    mlflow = Scripted("mlflow", [{"churn": registry}])
    snap = FleetCollector(CONFIG, {"mlflow": mlflow}).collect()
    churn = snap.model("churn")
    assert churn is not None and churn.rollout is not None
    assert churn.rollout.kind == "alias"
    assert (churn.rollout.state, churn.rollout.canary_weight) == ("progressing", 10)
    assert churn.serving_version == "3"
    fraud = snap.model("fraud")
    assert fraud is not None and fraud.rollout is None  # no target: nothing invented


def test_an_unexpected_exception_becomes_a_scrubbed_error_value():
    secret = "Bearer abcdefghijklmnop"
    prom = Scripted("prometheus", [RuntimeError(f"401 for header {secret}")])
    snap = FleetCollector(CONFIG, {"prometheus": prom}).collect()
    error = snap.sources["prometheus"].error or ""
    assert "RuntimeError" in error and "abcdefghijklmnop" not in error


def test_a_source_says_nothing_about_models_it_does_not_cover():
    kube = Scripted("kubernetes", [{}])
    snap = FleetCollector(CONFIG, {"kubernetes": kube}).collect()
    for name in ("churn", "fraud"):  # alias target and no target: not the cluster's business
        model = snap.model(name)
        assert model is not None and "kubernetes" not in model.errors


def wait_until_idle(collector: FleetCollector, name: str) -> None:
    """Wait (bounded) for the late poll of ``name`` to finish."""
    deadline = time.monotonic() + 10
    while name in collector.running():
        assert time.monotonic() < deadline, f"{name} poll never finished"
        time.sleep(0.01)


def test_a_late_poll_is_never_doubled_and_its_result_is_used_once_it_lands():
    """A source past its deadline is not polled again while that poll runs (it is
    "previous poll still running", its data stale); once the late poll lands, the next
    collect uses it if its own poll is late too; an answer in time beats it."""
    first, second = (Hang({"churn": Registry(name="churn", aliases={"champion": v})}) for v in "12")
    fresh = {"churn": Registry(name="churn", aliases={"champion": "3"})}
    prom = Scripted("prometheus", [{"churn": traffic(5.0), "fraud": traffic(1.0)}])
    mlflow = Scripted("mlflow", [first, second, fresh], deadline=0.2)
    collector = FleetCollector(CONFIG, {"prometheus": prom, "mlflow": mlflow})
    try:
        snap = collector.collect()  # poll 1 hangs: timed out
        assert snap.sources["mlflow"].error == "timed out after 0.2s"
        assert set(collector.running()) == {"mlflow"}

        time.sleep(1.1)
        snap = collector.collect()  # poll 1 still running: no second poll
        assert mlflow.fetches == 1
        assert snap.sources["mlflow"].status == "error"
        running = re.fullmatch(
            r"previous poll still running \((\d+)s\)", snap.sources["mlflow"].error or ""
        )
        assert running is not None and int(running[1]) >= 1  # its age, ~1.3 s
        assert snap.sources["prometheus"].status == "ok"  # the others still arrive
        churn = snap.model("churn")
        assert churn is not None and churn.registry is None and "mlflow" in churn.errors

        first.release.set()  # poll 1 lands, after the collector gave up on it
        wait_until_idle(collector, "mlflow")
        snap = collector.collect()  # poll 2 hangs: poll 1's result is shown
        assert mlflow.fetches == 2
        assert snap.sources["mlflow"].status == "ok"
        churn = snap.model("churn")
        assert churn is not None and churn.registry is not None
        assert churn.registry.champion == "1" and churn.stale == frozenset()

        snap = collector.collect()  # poll 2 still running: poll 1's data kept, stale
        assert mlflow.fetches == 2
        assert (snap.sources["mlflow"].error or "").startswith("previous poll still running (")
        churn = snap.model("churn")
        assert churn is not None and churn.registry is not None
        assert churn.registry.champion == "1" and churn.stale == {"mlflow"}

        second.release.set()
        wait_until_idle(collector, "mlflow")
        snap = collector.collect()  # poll 3 answers in time: it beats poll 2's late result
        assert mlflow.fetches == 3
        churn = snap.model("churn")
        assert churn is not None and churn.registry is not None
        assert churn.registry.champion == "3" and churn.stale == frozenset()
        assert collector.running() == {}
    finally:
        first.release.set()
        second.release.set()
