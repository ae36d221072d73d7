"""Hypothesis: whatever the input, a clear error or a valid value — never another exception.

* the config loader: random TOML text, random structured configs, random durations
  and random ``${VAR}`` references → a :class:`Config` or a :class:`ConfigError`;
* PromQL result parsing (the Prometheus source's pure assembly functions): random
  vectors, "NaN"/"+Inf"/"-Inf" strings, missing labels → values or None, never NaN
  or infinity in a :class:`Traffic`;
* Kubernetes object parsing: real-shaped manifests with optional fields removed or
  nulled → a :class:`Rollout` whose state is one of the five, never an exception;
* MLflow entities (real ``mlflow.entities`` objects) with missing fields → a
  :class:`ModelVersion` / :class:`DatasetRef`, never an exception.

Settings are modest (≤ 200 examples, no deadline) so the file runs in well under a minute.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import fields, is_dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mltui.collectors import promql
from mltui.collectors.kube_rollout import (
    argo_rollout,
    deployment_rollout,
    inference_service_rollout,
)
from mltui.collectors.prometheus import OVERALL, _rows, _traffic
from mltui.config import Config, ConfigError, parse_config
from mltui.durations import parse_duration
from mltui.fleet import Rollout, Traffic
from tests.support import manifests as m

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

STATES = {"healthy", "progressing", "paused", "degraded", "unknown"}


def parses_or_config_error(text: str) -> Config | None:
    """The property of the loader: a Config, or a ConfigError with a message."""
    try:
        return parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.toml"), message  # always names the file
        return None


# ---------------------------------------------------------------- config: raw TOML text


TOML_PIECES = st.sampled_from(
    [
        "[prometheus]\n",
        "[mlflow]\n",
        "[kubernetes]\n",
        "[alertmanager]\n",
        "[slo]\n",
        "[[models]]\n",
        "[models.drift]\n",
        "[models.slo]\n",
        "[presets.custom]\n",
        'url = "http://127.0.0.1:9090"\n',
        'name = "churn"\n',
        'timeout = "5s"\n',
        "timeout = 5\n",
        'refresh = "0s"\n',
        'refresh = "1h30m"\n',
        'metrics = "kserve"\n',
        'metrics = "nope"\n',
        'target = { kind = "Deployment", canary = "c" }\n',
        'target = { kind = "alias", canary = "c" }\n',
        'retrain = { cronjob = "ml" }\n',
        'retrain = { webhook = "https://x", command = ["a"] }\n',
        "latency_p95_ms = { warn = 400, crit = 200 }\n",
        'headers = { Authorization = "Bearer ${MLTUI_FUZZ_TOKEN}" }\n',
        'headers = { Authorization = "Bearer ${MLTUI_FUZZ_UNSET}" }\n',
        'reference = "mlflow"\n',
        'window = "24h"\n',
        "verify_tls = false\n",
        "bogus = 1\n",
        "= broken\n",
        "[models\n",
        '"\n',
        "keys = { refresh = 5 }\n",
        "max_versions = 0\n",
        "sample_size = 10\n",
    ]
)


@FUZZ
@given(st.lists(TOML_PIECES, max_size=14))
def test_config_from_toml_pieces_is_a_config_or_a_config_error(pieces: list[str]) -> None:
    os.environ["MLTUI_FUZZ_TOKEN"] = "fuzz-token-value"
    os.environ.pop("MLTUI_FUZZ_UNSET", None)
    parses_or_config_error("".join(pieces))


@FUZZ
@given(st.text(max_size=200))
def test_config_from_random_text_is_a_config_or_a_config_error(text: str) -> None:
    parses_or_config_error(text)


# ---------------------------------------------------------------- config: structured


def toml_value(value: Any) -> str:
    """A value in TOML syntax (strings as JSON strings: TOML basic strings take the same escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else "nan"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    raise TypeError(value)


def toml_document(doc: dict[str, Any]) -> str:
    """Top-level scalars, then [tables], then [[models]] (sub-tables inline)."""
    head, tables, models = [], [], []
    for key, value in doc.items():
        if key == "models":
            for model in value:
                models.append(
                    "[[models]]\n"
                    + "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in model.items())
                )
        elif isinstance(value, dict):
            tables.append(
                f"[{key}]\n"
                + "".join(f"{json.dumps(k)} = {toml_value(v)}\n" for k, v in value.items())
            )
        else:
            head.append(f"{key} = {toml_value(value)}\n")
    return "".join(head) + "\n".join(tables) + "\n" + "\n".join(models)


DURATIONS = st.one_of(
    st.sampled_from(
        ["500ms", "5s", "15m", "1h30m", "7d", "0s", "5", "-1s", "1.5s", "s", "5 s", ""]
    ),
    st.from_regex(r"[0-9]{0,3}(\.[0-9])?(ms|s|m|h|d|w|x)?", fullmatch=True),
)
SCALARS = st.one_of(
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    DURATIONS,
)
VAR_STRINGS = st.builds(
    lambda pre, var, post: f"{pre}${{{var}}}{post}",
    st.text(max_size=5),
    st.sampled_from(["MLTUI_FUZZ_TOKEN", "MLTUI_FUZZ_UNSET", "HOME", "1BAD", ""]),
    st.text(max_size=5),
)
VALUES = st.one_of(
    SCALARS,
    VAR_STRINGS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=6), SCALARS, max_size=3),
)


def section(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.sampled_from([*keys, "unknown_key"]), st.one_of(VALUES, DURATIONS), max_size=len(keys)
    )


MODEL = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=8), st.sampled_from(["churn", "fraud"]))},
    optional={
        "metrics": st.sampled_from(["kserve", "triton", "vllm", "custom", "nope"]),
        "registered_model": st.text(max_size=8),
        "selector": st.dictionaries(
            st.text(max_size=5), st.one_of(st.text(max_size=5), st.integers()), max_size=2
        ),
        "target": st.fixed_dictionaries(
            {
                "kind": st.sampled_from(
                    ["Deployment", "InferenceService", "Rollout", "alias", "Pod"]
                )
            },
            optional={
                "name": st.text(max_size=5),
                "canary": st.text(max_size=5),
                "protected": st.booleans(),
            },
        ),
        "retrain": st.dictionaries(
            st.sampled_from(["cronjob", "webhook", "command", "hmac_secret", "timeout"]),
            VALUES,
            max_size=3,
        ),
        "drift": st.dictionaries(
            st.sampled_from(
                ["reference", "current", "window", "timestamp_column", "drift_query", "sample_size"]
            ),
            VALUES,
            max_size=4,
        ),
        "slo": st.dictionaries(
            st.sampled_from(["latency_p95_ms", "error_rate", "drift_share"]),
            st.dictionaries(
                st.sampled_from(["warn", "crit"]),
                st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=3)),
            ),
            max_size=2,
        ),
    },
)

CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "refresh": DURATIONS,
        "window": DURATIONS,
        "read_only": SCALARS,
        "prometheus": section(["url", "timeout", "headers", "verify_tls", "rate_window"]),
        "mlflow": section(["tracking_uri", "timeout", "max_versions"]),
        "kubernetes": section(["context", "namespace", "kubeconfig", "timeout"]),
        "alertmanager": section(["url", "timeout", "headers", "verify_tls"]),
        "keys": st.dictionaries(st.text(max_size=6), SCALARS, max_size=2),
        "models": st.lists(MODEL, max_size=3),
    },
)


@FUZZ
@given(CONFIGS)
def test_structured_configs_are_a_config_or_a_config_error(doc: dict[str, Any]) -> None:
    os.environ["MLTUI_FUZZ_TOKEN"] = "fuzz-token-value"
    os.environ.pop("MLTUI_FUZZ_UNSET", None)
    config = parses_or_config_error(toml_document(doc))
    if config is not None:
        assert config.refresh > 0 and config.window > 0
        assert len({mc.name for mc in config.models}) == len(config.models)


@FUZZ
@given(DURATIONS)
def test_durations_are_positive_seconds_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        assert str(exc)
    else:
        assert math.isfinite(seconds) and seconds > 0


@FUZZ
@given(
    # What an environment can hold: no NUL byte, no lone surrogate.
    st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
    st.booleans(),
)
def test_var_expansion_is_the_value_or_names_the_missing_variable(value: str, is_set: bool) -> None:
    var = "MLTUI_FUZZ_VAR"
    if is_set:
        os.environ[var] = value
    else:
        os.environ.pop(var, None)
    text = f'[prometheus]\nurl = "http://127.0.0.1:9090"\nheaders = {{ X-Token = "${{{var}}}" }}\n'
    try:
        config = parse_config(text, "fuzz.toml")
    except ConfigError as exc:
        assert not is_set and f"environment variable {var} is not set" in str(exc)
        assert "fuzz.toml:3" in str(exc)
    else:
        assert is_set
        assert config.prometheus is not None
        assert config.prometheus.headers["X-Token"].get_secret_value() == value


# ---------------------------------------------------------------- PromQL results


FLEET = parse_config(
    '[prometheus]\nurl = "http://127.0.0.1:9090"\n'
    '[[models]]\nname = "churn"\nmetrics = "kserve"\n'
    '[[models]]\nname = "fraud"\nmetrics = "kserve"\n'
    '[[models]]\nname = "sentiment"\nmetrics = "triton"\n'
    '[[models]]\nname = "detector"\nmetrics = "torchserve"\n',
    "fleet.toml",
)
GROUPS = promql.group_models(FLEET, FLEET.models)

SAMPLE_VALUES = st.one_of(
    st.sampled_from(["NaN", "+Inf", "-Inf", "0", "-0", "1e308", "1e-300", "", "abc", "1e400"]),
    st.floats().map(repr),
    st.integers(-(10**6), 10**6).map(str),
)
TIMES = st.floats(0, 2e9, allow_nan=False)


def vector_rows(group: promql.Group) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Instant-vector rows: labels from the group's keys (or missing), a track label
    sometimes, a value pair that may be short, missing or hold any string."""
    label_values = st.sampled_from([v for key in group.members for v in key] + ["other", ""])
    # Mostly a member's own labels (so the values reach a model), sometimes anything.
    own = st.builds(
        lambda key, track: {**dict(zip(group.keys, key, strict=True)), **track},
        st.sampled_from(list(group.members)),
        st.sampled_from([{}, {"track": "canary"}, {"track": "stable"}]),
    )
    labels = st.one_of(
        own,
        own,
        st.dictionaries(
            st.sampled_from([*group.keys, "track", "instance"]), label_values, max_size=3
        ),
    )
    value = st.one_of(
        st.tuples(TIMES, SAMPLE_VALUES).map(list),
        st.just([]),
        st.just(None),
        st.lists(SAMPLE_VALUES, max_size=1),
    )
    row = st.fixed_dictionaries({}, optional={"metric": labels, "value": value})
    return st.lists(row, max_size=6)


def matrix_rows(group: promql.Group) -> st.SearchStrategy[list[dict[str, Any]]]:
    label_values = st.sampled_from([v for key in group.members for v in key] + ["x"])
    labels = st.dictionaries(st.sampled_from([*group.keys, "track"]), label_values, max_size=2)
    values = st.lists(st.tuples(TIMES, SAMPLE_VALUES).map(list), max_size=5)
    return st.lists(
        st.fixed_dictionaries({"metric": labels}, optional={"values": values}), max_size=3
    )


def all_numbers(value: Any) -> list[float]:
    """Every float inside a (nested) dataclass / mapping / tuple value."""
    out: list[float] = []
    if isinstance(value, float):
        out.append(value)
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            out += all_numbers(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            out += all_numbers(v)
    elif isinstance(value, tuple | list):
        for v in value:
            out += all_numbers(v)
    return out


@FUZZ
@given(st.data())
def test_promql_results_become_values_or_none_never_nan(data: st.DataObject) -> None:
    group = data.draw(st.sampled_from(GROUPS))
    signals = [*promql.instant_queries(group, 300.0)]
    results = {sig: data.draw(vector_rows(group), label=sig) for sig in signals}
    results["p95_series"] = data.draw(matrix_rows(group), label="p95_series")
    rows = {sig: _rows(result, group, sig) for sig, result in results.items()}
    for key in group.members:
        traffic = _traffic(group.preset, key, rows)
        assert isinstance(traffic, Traffic)
        for number in all_numbers(traffic):
            assert math.isfinite(number), traffic
        stats = traffic.overall
        if stats.error_rate is not None:
            assert stats.rps  # an error rate needs traffic
    assert OVERALL == ""


# ---------------------------------------------------------------- Kubernetes objects


def paths_of(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path inside the mappings of ``obj`` (list items by index)."""
    out: list[tuple[Any, ...]] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((*prefix, k))
            out += paths_of(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths_of(v, (*prefix, i))
    return out


def damage(obj: dict[str, Any], picks: list[tuple[int, bool]]) -> dict[str, Any]:
    """``obj`` with some key paths removed (or set to null), as a sloppy controller might leave it."""
    out = copy.deepcopy(obj)
    for index, nullify in picks:
        paths = paths_of(out)
        if not paths:
            break
        path = paths[index % len(paths)]
        parent: Any = out
        for part in path[:-1]:
            parent = parent[part]
        if nullify:
            parent[path[-1]] = None
        else:
            del parent[path[-1]]
    return out


def _deployment() -> dict[str, Any]:
    deploy = m.deployment("churn", model="churn-classifier", version="3")
    deploy["status"] = {
        "observedGeneration": 1,
        "replicas": 2,
        "updatedReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "conditions": [
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ],
    }
    deploy["metadata"].update(generation=1, annotations={"deployment.kubernetes.io/revision": "2"})
    return deploy


def _replicaset() -> dict[str, Any]:
    return {
        "metadata": {
            "name": "churn-abc",
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "labels": {"pod-template-hash": "abc"},
            "ownerReferences": [{"kind": "Deployment", "name": "churn"}],
            "creationTimestamp": "2026-11-29T10:00:00Z",
        },
        "spec": {"replicas": 2, "template": _deployment()["spec"]["template"]},
    }


def _manifest_names() -> list[str]:
    return ["deployment", "canary", "isvc", "rollout"]


PICKS = st.lists(st.tuples(st.integers(0, 10_000), st.booleans()), min_size=1, max_size=8)


def _objects(kind: str) -> dict[str, Any]:
    if kind in ("deployment", "canary"):
        return _deployment()
    if kind == "isvc":
        return m.inference_service("churn", model="churn-classifier", version="3")
    return m.rollout("churn", model="churn-classifier", version="3")


@FUZZ
@given(st.sampled_from(_manifest_names()), PICKS, PICKS)
def test_kubernetes_objects_with_fields_missing_still_give_a_rollout(
    kind: str, picks: list[tuple[int, bool]], rs_picks: list[tuple[int, bool]]
) -> None:
    obj = damage(_objects(kind), picks)
    replicasets = [damage(_replicaset(), rs_picks), _replicaset()]
    if kind == "deployment":
        rollout = deployment_rollout(obj, canary=None, replicasets=replicasets, context="c")
    elif kind == "canary":
        canary = damage(
            m.canary_deployment("churn", model="churn-classifier", version="4"), rs_picks
        )
        rollout = deployment_rollout(
            _deployment(), canary=canary, replicasets=replicasets, context="c"
        )
    elif kind == "isvc":
        rollout = inference_service_rollout(obj, context="c")
    else:
        rollout = argo_rollout(obj, replicasets=replicasets, context="c")
    assert isinstance(rollout, Rollout)
    assert rollout.state in STATES
    if rollout.canary_weight is not None:
        assert isinstance(rollout.canary_weight, int)


def test_an_empty_object_is_an_unknown_or_progressing_rollout_not_an_error() -> None:
    """The extreme case of missing fields: {}."""
    for rollout in (
        deployment_rollout({}, canary=None, replicasets=None, context=None),
        argo_rollout({}, replicasets=None, context=None),
        inference_service_rollout({}, context=None),
    ):
        assert rollout.state in STATES and rollout.serving_version is None


# ---------------------------------------------------------------- MLflow entities


OPT_TEXT = st.one_of(st.none(), st.text(max_size=10))


@FUZZ
@given(
    version=st.one_of(st.integers(0, 100).map(str), st.text(max_size=4)),
    created=st.one_of(st.none(), st.integers(0, 2**41)),
    description=OPT_TEXT,
    source=OPT_TEXT,
    status=st.one_of(
        st.none(), st.sampled_from(["READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION"])
    ),
    tags=st.one_of(
        st.none(), st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)
    ),
    aliases=st.lists(st.text(min_size=1, max_size=5), max_size=2).map(tuple),
)
def test_mlflow_versions_with_missing_fields_become_model_versions(
    version: str,
    created: int | None,
    description: str | None,
    source: str | None,
    status: str | None,
    tags: dict[str, str] | None,
    aliases: tuple[str, ...],
) -> None:
    from mlflow.entities.model_registry import ModelVersion as MlflowVersion
    from mlflow.entities.model_registry import ModelVersionTag

    from mltui.collectors.mlflow import MlflowSource

    mv = MlflowVersion(
        name="churn-classifier",
        version=version,
        creation_timestamp=created,  # type: ignore[arg-type]
        description=description,
        source=source,
        run_id=None,  # no run: no client call
        status=status,  # type: ignore[arg-type]
        tags=[ModelVersionTag(k, v) for k, v in tags.items()] if tags is not None else None,
    )
    source_ = MlflowSource.__new__(MlflowSource)  # only the pure entity → dataclass step
    out = MlflowSource._version(source_, None, mv, aliases)
    assert out.version == str(version)
    assert out.run_id is None and out.aliases == aliases
    assert out.created is None or out.created.tzinfo is not None
    assert dict(out.tags) == (tags or {})


@FUZZ
@given(
    name=st.text(max_size=8),
    digest=OPT_TEXT,
    source=st.one_of(
        OPT_TEXT,
        st.dictionaries(
            st.sampled_from(["uri", "url", "path", "other"]),
            st.one_of(st.text(max_size=6), st.integers(), st.none()),
            max_size=2,
        ).map(json.dumps),
        st.just("[1, 2]"),
        st.just("null"),
    ),
    source_type=OPT_TEXT,
    context=st.one_of(st.none(), st.text(max_size=6)),
)
def test_mlflow_dataset_inputs_with_missing_fields_become_dataset_refs(
    name: str, digest: str | None, source: str | None, source_type: str | None, context: str | None
) -> None:
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from mltui.collectors.mlflow import DATASET_CONTEXT_TAG, _dataset

    tags = [InputTag(DATASET_CONTEXT_TAG, context)] if context is not None else None
    ref = _dataset(DatasetInput(Dataset(name, digest, source_type, source), tags))  # type: ignore[arg-type]
    assert ref.name == name
    assert ref.context == context
    assert ref.source is None or isinstance(ref.source, str)


@pytest.mark.parametrize("value", ["NaN", "+Inf", "-Inf"])
def test_a_nan_or_inf_sample_is_no_value(value: str) -> None:
    """The three strings Prometheus uses for non-finite samples, each on its own."""
    group = next(g for g in GROUPS if g.preset_name == "kserve")
    key = next(iter(group.members))
    result = [{"metric": dict(zip(group.keys, key, strict=True)), "value": [1.0, value]}]
    rows = {sig: _rows(result, group, sig) for sig in promql.instant_queries(group, 300.0)}
    traffic = _traffic(group.preset, key, rows)
    assert traffic.overall.latency_ms.p95 is None and traffic.overall.rps is None


@pytest.mark.parametrize("preset", ["kserve", "triton"])
def test_a_huge_sample_does_not_overflow_to_infinity(preset: str) -> None:
    """1e308 seconds is finite; in milliseconds it is not. It must read as no value."""
    group = next(g for g in GROUPS if g.preset_name == preset)
    key = next(iter(group.members))
    result = [{"metric": dict(zip(group.keys, key, strict=True)), "value": [1.0, "1e308"]}]
    rows = {sig: _rows(result, group, sig) for sig in promql.instant_queries(group, 300.0)}
    rows["p95_series"] = _rows(
        [{"metric": dict(zip(group.keys, key, strict=True)), "values": [[1.0, "1e308"]]}],
        group,
        "p95_series",
    )
    traffic = _traffic(group.preset, key, rows)
    assert all(math.isfinite(n) for n in all_numbers(traffic)), traffic
