"""The TOML config (DESIGN.md §2): typed, validated, and precise about mistakes.

``load_config(path)`` returns a :class:`Config` or raises :class:`ConfigError`
whose message names the file, the line and the key. ``${VAR}`` in strings is
expanded from the environment; expanded values are registered as secrets so no
error, repr or screen can show them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from mltui import secrets
from mltui.bindings import BINDING_IDS
from mltui.durations import parse_duration
from mltui.locations import find_config
from mltui.presets import BUILTIN_PRESETS, Preset

Duration = Annotated[float, BeforeValidator(parse_duration)]
"""Seconds, written in the file as "500ms", "5s", "15m"…"""


class ConfigError(Exception):
    """A config problem, already phrased for the user: "file:line: key: what is wrong"."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Threshold(_Model):
    """Warn and crit levels for one signal; a value at or above a level trips it."""

    warn: float | None = None
    crit: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Threshold:
        if self.warn is not None and self.crit is not None and self.crit < self.warn:
            raise ValueError(f"crit ({self.crit}) must not be below warn ({self.warn})")
        return self


class Slo(_Model):
    """Health thresholds. Fleet defaults in [slo]; a model's [models.slo] overrides per key."""

    latency_p95_ms: Threshold = Threshold(warn=200, crit=400)
    error_rate: Threshold = Threshold(warn=0.01, crit=0.05)
    drift_share: Threshold = Threshold(warn=0.3, crit=0.5)


class SloOverride(_Model):
    latency_p95_ms: Threshold | None = None
    error_rate: Threshold | None = None
    drift_share: Threshold | None = None


class PrometheusConfig(_Model):
    url: str
    """Base URL of the Prometheus HTTP API, e.g. http://127.0.0.1:9090."""
    timeout: Duration = 5.0
    """Per-request timeout."""
    headers: dict[str, SecretStr] = {}
    """Extra HTTP headers (e.g. Authorization); values may use ${VAR}."""
    verify_tls: bool = True
    """Verify the server's TLS certificate. false shows a warning in the status bar."""
    rate_window: Duration = 300.0
    """The range of rate()/increase() in instant queries."""


class ScrapeConfig(_Model):
    """Read model servers' /metrics directly, for setups without a Prometheus server."""

    urls: list[str]
    timeout: Duration = 5.0
    rate_window: Duration = 60.0
    """Rates and quantiles are computed over the scrapes of this last stretch of time."""


class MlflowConfig(_Model):
    tracking_uri: str | None = None
    """http(s)://… of an MLflow server or sqlite:///path; default $MLFLOW_TRACKING_URI."""
    timeout: Duration = 5.0
    """Per-request timeout (MLflow's own default of 120 s × 7 retries is overridden)."""
    max_versions: int = Field(default=20, ge=1)
    """Newest versions read per registered model."""


class KubernetesConfig(_Model):
    context: str | None = None
    """Kube context; default the current context of $KUBECONFIG or ~/.kube/config."""
    namespace: str | None = None
    """Namespace for targets that name none; default the context's namespace."""
    kubeconfig: str | None = None
    """Path of the kubeconfig; default $KUBECONFIG or ~/.kube/config."""
    timeout: Duration = 5.0


class AlertmanagerConfig(_Model):
    url: str
    timeout: Duration = 5.0
    headers: dict[str, SecretStr] = {}
    verify_tls: bool = True


TargetKind = Literal["Deployment", "InferenceService", "Rollout", "alias"]


class Target(_Model):
    """Where the model is served."""

    kind: TargetKind
    name: str | None = None
    """Object name; default the model's name (not used by alias targets)."""
    namespace: str | None = None
    canary: str | None = None
    """Deployment targets: name of the canary Deployment."""
    context: str | None = None
    """Kube context of this target, when models live in different clusters."""
    protected: bool = False
    """Actions on this target need the model name typed to confirm."""


class Retrain(_Model):
    """How to retrain: exactly one of cronjob, webhook, command."""

    cronjob: str | None = None
    """"namespace/name" of a CronJob to instantiate (as kubectl create job --from)."""
    webhook: str | None = None
    headers: dict[str, SecretStr] = {}
    hmac_secret: SecretStr | None = None
    """Signs the webhook body: header X-Mltui-Signature: sha256=<hex>."""
    command: list[str] | None = None
    timeout: Duration = 30.0

    @model_validator(mode="after")
    def _exactly_one(self) -> Retrain:
        chosen = [k for k in ("cronjob", "webhook", "command") if getattr(self, k)]
        if len(chosen) != 1:
            raise ValueError("set exactly one of cronjob, webhook or command")
        if self.cronjob and "/" not in self.cronjob:
            raise ValueError('cronjob is "namespace/name"')
        return self


class DriftConfig(_Model):
    reference: str | None = None
    """"mlflow" (the champion run's logged dataset) or a path/glob of parquet or csv."""
    reference_artifact: str | None = None
    """With reference = "mlflow": a run artifact path to use instead of the dataset input."""
    current: str | None = None
    """Path/glob of parquet or csv inference logs."""
    timestamp_column: str | None = None
    window: Duration | None = None
    """Only current rows newer than this (needs timestamp_column)."""
    columns: list[str] | None = None
    """Features to compare; default the columns both share, minus timestamp/id columns."""
    exclude: list[str] = []
    method: str | None = None
    """Evidently stat test for every column (e.g. "wasserstein", "psi", "ks")."""
    threshold: float | None = None
    column_methods: dict[str, str] = {}
    column_thresholds: dict[str, float] = {}
    sample_size: int = Field(default=50_000, ge=1_000)
    """Rows sampled (seeded) from each side; never below Evidently's 1,000-row switch."""
    drift_query: str | None = None
    """PromQL that already yields this model's drift share; replaces the computation."""

    @model_validator(mode="after")
    def _has_source(self) -> DriftConfig:
        if self.drift_query is None and (self.reference is None or self.current is None):
            raise ValueError("set reference and current, or drift_query")
        if self.window is not None and self.timestamp_column is None:
            raise ValueError("window needs timestamp_column")
        return self


class ModelConfig(_Model):
    name: str = Field(min_length=1)
    """Display name."""
    registered_model: str | None = None
    """MLflow registered model; default the name."""
    metrics: str = "kserve"
    """Metric preset: a built-in or one of [presets]."""
    selector: dict[str, str] | None = None
    """Label matchers that pick this model's series; default {model_label = registered model}."""
    target: Target | None = None
    retrain: Retrain | None = None
    drift: DriftConfig | None = None
    slo: SloOverride | None = None
    alert_labels: dict[str, str] | None = None
    """Alertmanager labels that mark this model's alerts; default {model = name}."""

    @property
    def registry_name(self) -> str:
        return self.registered_model or self.name


_MODEL_INDEX = "_mltui_model_index"
"""Where :meth:`Config.model` caches its name index (see there)."""


class Config(_Model):
    refresh: Duration = 15.0
    """TUI poll interval."""
    window: Duration = 3600.0
    """Chart window."""
    read_only: bool = False
    """No action can be taken (also --read-only)."""
    theme: str | None = None
    """A Textual theme name, e.g. "textual-dark", "nord", "gruvbox"."""
    prometheus: PrometheusConfig | None = None
    scrape: ScrapeConfig | None = None
    mlflow: MlflowConfig | None = None
    kubernetes: KubernetesConfig | None = None
    alertmanager: AlertmanagerConfig | None = None
    slo: Slo = Slo()
    presets: dict[str, Preset] = {}
    keys: dict[str, str] = {}
    """Binding id -> key, e.g. { refresh = "f5" }."""
    models: list[ModelConfig] = []

    # Not from the file: where the config came from, for messages.
    source: str | None = Field(default=None, exclude=True)
    warnings: tuple[str, ...] = Field(default=(), exclude=True)
    """Things the user should know (e.g. TLS verification off); shown in the status bar."""

    def preset(self, name: str) -> Preset:
        return self.presets.get(name) or BUILTIN_PRESETS[name]

    def slo_for(self, model: ModelConfig) -> Slo:
        """The fleet [slo] with the model's own overrides applied per key."""
        if model.slo is None:
            return self.slo
        changes = {k: v for k, v in model.slo.model_dump(exclude_none=True).items()}
        merged = self.slo.model_dump()
        for key, value in changes.items():
            merged[key] = {**merged[key], **value}
        return Slo.model_validate(merged)

    def model(self, name: str) -> ModelConfig | None:
        # An index built once, not a scan per lookup (health evaluates every model).
        # Kept in the instance __dict__ under a non-field key, which pydantic's __eq__
        # and model_dump ignore (a PrivateAttr would make equal configs compare unequal)
        # and which frozen=True does not guard. model_copy() copies __dict__, so the
        # cache names the very list it indexes: a copy with new models rebuilds it.
        cached = self.__dict__.get(_MODEL_INDEX)
        if cached is None or cached[0] is not self.models or cached[1] != len(self.models):
            index: dict[str, ModelConfig] = {}
            for m in self.models:
                index.setdefault(m.name, m)  # the first one wins, as the scan did
            cached = (self.models, len(self.models), index)
            self.__dict__[_MODEL_INDEX] = cached
        found: ModelConfig | None = cached[2].get(name)
        return found

    @property
    def mlflow_uri(self) -> str | None:
        if self.mlflow is not None and self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return os.environ.get("MLFLOW_TRACKING_URI") or None


# ---------------------------------------------------------------- loading


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _MissingVar(Exception):
    def __init__(self, path: tuple[str | int, ...], var: str) -> None:
        super().__init__(var)
        self.path, self.var = path, var


_SECRET_WORDS = ("token", "password", "secret", "auth", "key", "cookie")


def _is_secret_path(path: tuple[str | int, ...]) -> bool:
    """Whether a value at ``path`` is a credential: headers, hmac_secret, *token*, …

    Only those are registered as secrets; masking every ${VAR} would turn namespaces,
    paths and model names into "***" in every error message. Credentials inside URLs
    (user:pass@, ?token=) are masked by pattern wherever they appear.
    """
    names = [p.lower() for p in path if isinstance(p, str)]
    return "headers" in names or any(w in names[-1] for w in _SECRET_WORDS if names)


def _expand(value: Any, path: tuple[str | int, ...] = ()) -> Any:
    """Expand ${VAR} in every string; values expanded into credentials become secrets."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            var = match.group(1)
            if var not in os.environ:
                raise _MissingVar(path, var)
            if _is_secret_path(path):
                secrets.register(os.environ[var])
            return os.environ[var]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, (*path, i)) for i, v in enumerate(value)]
    return value


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"' -]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\"'-]+)\s*=")
_INLINE_KEY = re.compile(r"([A-Za-z0-9_-]+)\s*=")


def _line_index(text: str) -> dict[tuple[str | int, ...], int]:
    """Map TOML key paths (with array-of-table indices) to the line that sets them."""
    index: dict[tuple[str | int, ...], int] = {}
    counters: dict[tuple[str | int, ...], int] = {}
    table: tuple[str | int, ...] = ()
    for lineno, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header and not _KEY.match(line):
            names = [n.strip().strip("\"'") for n in header.group(2).split(".")]
            # Resolve each prefix against the latest element of any array of tables.
            path: tuple[str | int, ...] = ()
            for name in names[:-1]:
                path = (*path, name)
                if path in counters:
                    path = (*path, counters[path])
            path = (*path, names[-1])
            if header.group(1) == "[[":
                counters[path] = counters.get(path, -1) + 1
                path = (*path, counters[path])
            table = path
            index.setdefault(table, lineno)
            continue
        key = _KEY.match(line)
        if key:
            kpath = (*table, key.group(1).strip("\"'"))
            index.setdefault(kpath, lineno)
            rest = line[key.end() :]
            if "{" in rest:
                for inner in _INLINE_KEY.finditer(rest):
                    index.setdefault((*kpath, inner.group(1)), lineno)
    return index


def _line_of(index: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    for end in range(len(loc), 0, -1):
        if loc[:end] in index:
            return index[loc[:end]]
    return None


def _value_at(tree: Any, loc: tuple[str | int, ...]) -> Any:
    for part in loc:
        try:
            tree = tree[part]
        except (KeyError, IndexError, TypeError):
            return None
    return tree


def _key_name(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _clean_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    # Pydantic adds validator names ("function-after[...]") to some locations.
    return tuple(p for p in loc if isinstance(p, int) or ("[" not in str(p) and "(" not in str(p)))


def _describe(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    msg = str(err.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    return secrets.redact(msg)


def parse_config(text: str, filename: str = "<config>") -> Config:
    """Validate TOML ``text``; ConfigError names ``filename``, line and key."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    index = _line_index(text)

    def fail(loc: tuple[str | int, ...], what: str) -> ConfigError:
        line = _line_of(index, loc)
        where = f"{filename}:{line}" if line else filename
        return ConfigError(f"{where}: {_key_name(loc)}: {what}")

    try:
        expanded = _expand(raw)
    except _MissingVar as exc:
        raise fail(exc.path, f"environment variable {exc.var} is not set") from None

    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        loc = _clean_loc(tuple(first["loc"]))
        what = _describe(first)
        written, used = _value_at(raw, loc), _value_at(expanded, loc)
        if isinstance(written, str) and isinstance(used, str) and written != used and used:
            # Quote what the file says ("${TOKEN}"), never what the environment put there.
            what = what.replace(used, written)
        message = str(fail(loc, what))
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ConfigError(message) from None

    _check_references(config, fail)
    return config.model_copy(update={"source": filename, "warnings": _tls_warnings(config)})


def _check_references(config: Config, fail: Any) -> None:
    """Cross-field rules pydantic cannot see: unique names, known presets."""
    seen: set[str] = set()
    for i, model in enumerate(config.models):
        if model.name in seen:
            raise fail(("models", i, "name"), f'duplicate model name "{model.name}"')
        seen.add(model.name)
        if model.metrics not in config.presets and model.metrics not in BUILTIN_PRESETS:
            known = ", ".join(sorted({*BUILTIN_PRESETS, *config.presets}))
            raise fail(
                ("models", i, "metrics"), f'unknown preset "{model.metrics}" (known: {known})'
            )
        if model.target is not None and model.target.canary and model.target.kind != "Deployment":
            raise fail(
                ("models", i, "target", "canary"), "canary applies to Deployment targets only"
            )
        if model.slo is not None:
            try:
                config.slo_for(model)
            except ValidationError as exc:
                key = next((str(p) for p in exc.errors()[0]["loc"] if isinstance(p, str)), "slo")
                raise fail(("models", i, "slo", key), _describe(exc.errors()[0])) from None
    for key in config.keys:
        if key not in BINDING_IDS:
            raise fail(
                ("keys", key),
                f'unknown binding id "{key}" (the TUI\'s help, ?, lists every id)',
            )
    for name in config.presets:
        if name in BUILTIN_PRESETS:
            raise fail(("presets", name), f'"{name}" is a built-in preset; pick another name')


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Find and load the config (``--config``, $MLTUI_CONFIG, XDG default).

    With no file anywhere, an empty config: the TUI then says how to write one.
    """
    found, how = find_config(path)
    if found is None:
        return Config(source=None)
    try:
        text = found.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{found}: config file not found (from {how})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{found}: cannot read config: {exc}") from None
    config = parse_config(text, str(found))
    warnings = list(config.warnings)
    if found.stat().st_mode & 0o077 and _LITERAL_SECRET.search(text):
        warnings.append(
            f"{found} is readable by other users and holds a literal credential: "
            "chmod 600 it, or use ${VAR} for the secret"
        )
    return config.model_copy(update={"warnings": tuple(warnings)})


# A credential written into the file itself rather than taken from ${VAR}.
_LITERAL_SECRET = re.compile(
    r"""(?im)^[^#\n]*\b(authorization|token|password|hmac_secret|api[_-]?key)\b["']?\s*=\s*["'](?![^"']*\$\{)[^"']{4,}["']"""
)


def _tls_warnings(config: Config) -> tuple[str, ...]:
    out = []
    for name in ("prometheus", "alertmanager"):
        section = getattr(config, name)
        if section is not None and not section.verify_tls:
            out.append(f"[{name}] verify_tls = false: TLS certificates are not checked")
    return tuple(out)
