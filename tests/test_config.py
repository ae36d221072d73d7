"""The config loader: every kind of bad input gets its own clear error naming file, line, key."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mltui.config import ConfigError, load_config, parse_config

GOOD = """\
refresh = "10s"
window = "6h"

[prometheus]
url = "http://127.0.0.1:9090"
timeout = "2500ms"
headers = { Authorization = "Bearer ${MLTUI_TEST_TOKEN}" }

[slo]
latency_p95_ms = { warn = 150, crit = 300 }

[[models]]
name = "churn"
registered_model = "churn-classifier"
metrics = "kserve"
target = { kind = "Deployment", namespace = "ml", name = "churn", canary = "churn-canary" }
retrain = { cronjob = "ml/churn-retrain" }

[models.slo]
latency_p95_ms = { crit = 500 }

[[models]]
name = "fraud"
metrics = "mine"
target = { kind = "alias" }

[presets.mine]
latency_histogram = "my_request_seconds"
requests = "my_requests_total"
errors = 'my_requests_total{code=~"5.."}'
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def test_good_config_parses_durations_presets_and_merges_slo(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTUI_TEST_TOKEN", "s3cr3t-token-value")
    config = load_config(write(tmp_path, GOOD))
    assert config.refresh == 10.0
    assert config.window == 6 * 3600
    assert config.prometheus is not None and config.prometheus.timeout == 2.5
    churn, fraud = config.models
    assert churn.registry_name == "churn-classifier"
    assert fraud.registry_name == "fraud"
    assert config.preset("mine").requests == "my_requests_total"
    assert config.preset("kserve").latency_histogram == "request_predict_seconds"
    slo = config.slo_for(churn)
    assert (slo.latency_p95_ms.warn, slo.latency_p95_ms.crit) == (150, 500)
    assert config.slo_for(fraud).latency_p95_ms.crit == 300
    header = config.prometheus.headers["Authorization"]
    assert header.get_secret_value() == "Bearer s3cr3t-token-value"
    assert "s3cr3t" not in repr(config)


@pytest.mark.parametrize(
    ("text", "line", "key", "what"),
    [
        ('refresh = "5s"\nbogus = 1\n', 2, "bogus", "unknown key"),
        (
            '[prometheus]\nurl = "http://x"\ntimeout = "soon"\n',
            3,
            "prometheus.timeout",
            "is not a duration",
        ),
        ('read_only = "yes please"\n', 1, "read_only", "valid boolean"),
        (
            '[[models]]\nname = "a"\n\n[[models]]\nname = "b"\nmetrics = "nope"\n',
            6,
            "models[1].metrics",
            'unknown preset "nope"',
        ),
        (
            '[[models]]\nname = "a"\n[[models]]\nname = "a"\n',
            4,
            "models[1].name",
            'duplicate model name "a"',
        ),
        (
            '[[models]]\nname = "a"\ntarget = { kind = "Pod", name = "x" }\n',
            3,
            "models[0].target.kind",
            "Deployment",
        ),
        (
            '[[models]]\nname = "a"\n[models.drift]\ncurrent = "x.parquet"\nwindo = "1h"\n',
            5,
            "models[0].drift.windo",
            "unknown key",
        ),
        (
            "[slo]\nerror_rate = { warn = 0.5, crit = 0.1 }\n",
            2,
            "slo.error_rate",
            "must not be below warn",
        ),
        (
            '[[models]]\nname = "a"\nretrain = { cronjob = "ml/x", command = ["x"] }\n',
            3,
            "models[0].retrain",
            "exactly one",
        ),
    ],
    ids=[
        "unknown-key",
        "bad-duration",
        "wrong-type",
        "unknown-preset",
        "duplicate-name",
        "bad-kind",
        "nested-unknown-key",
        "crit-below-warn",
        "retrain-two-ways",
    ],
)
def test_bad_config_names_file_line_and_key(tmp_path, text, line, key, what):
    message = error_of(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'config.toml'}:{line}: {key}: "), message
    assert what in message


def test_unreadable_toml_names_the_file_and_line(tmp_path):
    message = error_of(tmp_path, 'refresh = "5s"\n[prometheus\nurl = 1\n')
    assert str(tmp_path / "config.toml") in message
    assert "not valid TOML" in message and "line 2" in message


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml")


def test_env_config_path_is_used(tmp_path, monkeypatch):
    path = write(tmp_path, 'refresh = "7s"\n')
    monkeypatch.setenv("MLTUI_CONFIG", str(path))
    assert load_config(None).refresh == 7.0


def test_no_config_anywhere_gives_an_empty_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.delenv("MLTUI_CONFIG", raising=False)
    config = load_config(None)
    assert config.models == [] and config.source is None


def test_missing_variable_names_the_variable_not_a_value(tmp_path, monkeypatch):
    monkeypatch.delenv("MLTUI_NOT_SET", raising=False)
    message = error_of(
        tmp_path, '[prometheus]\nurl = "http://x"\nheaders = { A = "${MLTUI_NOT_SET}" }\n'
    )
    assert ":3: prometheus.headers.A: environment variable MLTUI_NOT_SET is not set" in message


def test_expanded_secret_never_appears_in_an_error(tmp_path, monkeypatch):
    secret = "tok-0123456789-abcdef"
    monkeypatch.setenv("MLTUI_SECRET_TIMEOUT", secret)
    message = error_of(
        tmp_path, '[prometheus]\nurl = "http://x"\ntimeout = "${MLTUI_SECRET_TIMEOUT}"\n'
    )
    assert secret not in message
    assert "prometheus.timeout" in message and "${MLTUI_SECRET_TIMEOUT}" in message


def test_parse_config_without_a_file_uses_the_given_name():
    with pytest.raises(ConfigError, match=r"^inline:1: nope: unknown key"):
        parse_config("nope = 1\n", "inline")


def test_world_readable_config_with_a_literal_secret_warns(tmp_path):
    path = write(
        tmp_path,
        '[prometheus]\nurl = "http://x"\nheaders = { Authorization = "Bearer literal123" }\n',
    )
    path.chmod(0o644)
    warnings = load_config(path).warnings
    assert any("readable by other users" in w for w in warnings)
    assert not any("literal123" in w for w in warnings)
    path.chmod(0o600)
    assert load_config(path).warnings == ()


def test_a_secret_from_the_environment_does_not_warn(tmp_path, monkeypatch):
    monkeypatch.setenv("MLTUI_TEST_TOKEN", "from-env-1234")
    path = write(
        tmp_path,
        '[prometheus]\nurl = "http://x"\nheaders = { Authorization = "Bearer ${MLTUI_TEST_TOKEN}" }\n',
    )
    path.chmod(0o644)
    assert load_config(path).warnings == ()


def test_tls_verification_off_is_a_visible_warning(tmp_path):
    config = load_config(write(tmp_path, '[prometheus]\nurl = "https://x"\nverify_tls = false\n'))
    assert config.warnings == ("[prometheus] verify_tls = false: TLS certificates are not checked",)


def test_a_model_slo_override_that_contradicts_the_fleet_is_a_config_error(tmp_path):
    message = error_of(
        tmp_path,
        '[slo]\nlatency_p95_ms = { warn = 200, crit = 400 }\n[[models]]\nname = "a"\n'
        "[models.slo]\nlatency_p95_ms = { crit = 150 }\n",
    )
    assert (
        ":6: models[0].slo.latency_p95_ms: crit (150.0) must not be below warn (200.0)" in message
    )


def test_unknown_binding_id_in_keys_is_an_error(tmp_path):
    message = error_of(tmp_path, '[keys]\nrefresh = "f5"\nrefrsh = "f6"\n')
    assert ':3: keys.refrsh: unknown binding id "refrsh"' in message


def test_alias_targets_take_no_canary(tmp_path):
    message = error_of(
        tmp_path, '[[models]]\nname = "a"\ntarget = { kind = "alias", canary = "x" }\n'
    )
    assert ":3: models[0].target.canary: canary applies to Deployment targets only" in message


def test_only_credentials_from_the_environment_become_secrets(tmp_path, monkeypatch):
    from mltui.secrets import redact

    monkeypatch.setenv("MLTUI_TEST_NS", "namespace-not-secret-42")
    monkeypatch.setenv("MLTUI_TEST_HOOK_KEY", "hook-key-secret-43")
    load_config(
        write(
            tmp_path,
            '[[models]]\nname = "a"\ntarget = { kind = "Deployment", namespace = "${MLTUI_TEST_NS}" }\n'
            'retrain = { webhook = "http://x", hmac_secret = "${MLTUI_TEST_HOOK_KEY}" }\n',
        )
    )
    assert redact("in namespace-not-secret-42") == "in namespace-not-secret-42"
    assert redact("key hook-key-secret-43") == "key ***"
