"""The CPU-heavy half of drift: runs in a worker process, never in the UI's.

Everything here is called through a one-process
:class:`concurrent.futures.ProcessPoolExecutor` from ``collectors/drift.py``:
arguments and results are plain picklable values, and the entry points return
``("ok", value)`` or ``("error", message)`` rather than raising, so a bad input
file is a message on one model, not a dead worker. Messages are redacted again by
the parent, which knows the registered secrets (this process does not).

The steps for one model: read the reference and current files, keep the current
window, pick and clean the feature columns, sample both sides (seeded), run
Evidently's ``Report([DataDriftPreset(...)])`` and turn its snapshot into plain
per-feature rows (plus small histograms for the TUI).
"""

from __future__ import annotations

import json
import os
import re
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mltui.fleet import finite  # dataclasses only: cheap in the worker and the parent

if TYPE_CHECKING:  # pandas is imported lazily: this module is also imported by the poll side
    import pandas as pd

# Evidently's default tests switch from distances (Wasserstein, Jensen-Shannon) to
# p-values (KS, chi-square, z) at reference_rows <= 1000 (legacy stattests registry,
# ``_get_default_stattest``). Samples never go below this, so sampling never changes
# which test a feature gets.
MIN_SAMPLE = 1001

SEED = 0
"""Sampling is seeded: the same files give the same numbers on every refresh."""

HIST_BINS = 20
HIST_TOP_CATEGORIES = 10

# Evidently stat tests whose score is a p-value (drift when the score is *below*
# the threshold); every other test scores a distance (drift when above).
P_VALUE_TESTS = frozenset(
    {
        "anderson",
        "chisquare",
        "cramer_von_mises",
        "es",
        "fisher_exact",
        "g_test",
        "ks",
        "mannw",
        "empirical_mmd",
        "t_test",
        "TVD",
        "z",
    }
)

# Evidently reports a test by its display name; the TUI and JSON use the short one
# that config files use (method = "wasserstein").
_SHORT_NAMES = {
    "Anderson-Darling": "anderson",
    "chi-square p_value": "chisquare",
    "Cramer-von Mises": "cramer_von_mises",
    "Energy-distance": "ed",
    "Epps-Singleton": "es",
    "Fisher's Exact test": "fisher_exact",
    "g_test": "g_test",
    "Hellinger distance": "hellinger",
    "Jensen-Shannon distance": "jensenshannon",
    "Kullback-Leibler divergence": "kl_div",
    "K-S p_value": "ks",
    "Mann-Whitney U-rank test": "mannw",
    "empirical_mmd": "empirical_mmd",
    "PSI": "psi",
    "t_test": "t_test",
    "Total-Variation-Distance": "TVD",
    "Wasserstein distance (normed)": "wasserstein",
    "Z-test p_value": "z",
    "Percentile text content drift": "perc_text_content_drift",
    "Absolute text content drift": "abs_text_content_drift",
}

_ID_NAMES = frozenset({"id", "uuid", "guid", "index", "key", "request", "row"})


class DriftInputError(Exception):
    """Bad input data, phrased for the user."""


@dataclass(frozen=True)
class DriftJob:
    """Everything the worker needs to compute one model's drift (picklable)."""

    model: str
    reference_files: tuple[str, ...]
    current_files: tuple[str, ...]
    timestamp_column: str | None = None
    window: float | None = None
    columns: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    method: str | None = None
    threshold: float | None = None
    column_methods: dict[str, str] = field(default_factory=dict)
    column_thresholds: dict[str, float] = field(default_factory=dict)
    sample_size: int = 50_000
    html_path: str | None = None
    """Also save the full Evidently HTML report here."""


# ---------------------------------------------------------------- entry points


def run_job(job: DriftJob) -> tuple[str, Any]:
    """Compute one model's drift: ("ok", result dict) or ("error", message)."""
    try:
        return "ok", compute(job)
    except DriftInputError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001 - a value for the parent, never a dead worker
        return "error", _describe(exc)


def run_resolve(
    tracking_uri: str, timeout: float, registered_model: str, artifact: str | None, cache_dir: str
) -> tuple[str, Any]:
    """Resolve reference = "mlflow": ("ok", (identity, files)) or ("error", message)."""
    try:
        return "ok", resolve_mlflow_reference(
            tracking_uri, timeout, registered_model, artifact, cache_dir
        )
    except DriftInputError as exc:
        return "error", str(exc)
    except Exception as exc:  # noqa: BLE001
        return "error", _describe(exc)


def _describe(exc: BaseException) -> str:
    from mltui.secrets import error_text

    # The last frame tells a maintainer where it broke without a whole traceback.
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})" if frames else ""
    return error_text(exc) + where


# ---------------------------------------------------------------- MLflow reference


def resolve_mlflow_reference(
    tracking_uri: str, timeout: float, registered_model: str, artifact: str | None, cache_dir: str
) -> tuple[str, tuple[str, ...]]:
    """The champion version's training data: (identity, local or remote file paths).

    With ``artifact`` the named run artifact is downloaded (once per run) into
    ``cache_dir``; otherwise the run's logged dataset input with a file source is
    used, preferring the one whose context is "training".
    """
    # MLflow retries HTTP calls for minutes by default; a poll must end in seconds.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout))))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(registered_model, "champion")
    except MlflowException as exc:
        if not _is_missing(exc):  # refused, 401/403, 5xx, a timeout: not the registry's answer
            raise DriftInputError(_unreachable(tracking_uri, exc)) from None
        raise DriftInputError(
            f'reference = "mlflow": registered model "{registered_model}" has no champion '
            f"alias ({_first_line(exc)})"
        ) from None
    run_id = version.run_id
    if not run_id:
        raise DriftInputError(
            f'reference = "mlflow": champion v{version.version} of "{registered_model}" '
            "has no source run"
        )
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if not _is_missing(exc):
            raise DriftInputError(_unreachable(tracking_uri, exc)) from None
        raise DriftInputError(
            f"reference run {run_id} of champion v{version.version} not found ({_first_line(exc)})"
        ) from None

    if artifact:
        # download_artifacts puts "a/b.parquet" at <dst>/b.parquet: download into the
        # artifact's own directory so the cached copy sits at <run_id>/<artifact>.
        artifact = artifact.strip("/")
        local = os.path.join(cache_dir, run_id, artifact)
        target = os.path.dirname(local)
        if not os.path.exists(local):
            os.makedirs(target, exist_ok=True)
            try:
                local = client.download_artifacts(run_id, artifact, target)
            except (MlflowException, OSError) as exc:
                raise DriftInputError(
                    f'reference artifact "{artifact}" not found in run {run_id} '
                    f"({_first_line(exc)})"
                ) from None
        files = _local_data_files(local)
        if not files:
            raise DriftInputError(
                f'reference artifact "{artifact}" of run {run_id} has no parquet/csv'
            )
        return f"mlflow:{run_id}:artifact:{artifact}", tuple(files)

    inputs = list(run.inputs.dataset_inputs) if run.inputs else []
    # Training data first: a run may also log evaluation sets.
    inputs.sort(key=lambda di: 0 if _context(di) == "training" else 1)
    for dataset_input in inputs:
        dataset = dataset_input.dataset
        location = _source_location(dataset.source)
        if location:
            return (
                f"mlflow:{run_id}:dataset:{dataset.name}:{dataset.digest}:{location}",
                (location,),
            )
    raise DriftInputError(
        f"champion v{version.version}'s run {run_id} logged no dataset with a file source; "
        "log one with mlflow.log_input(mlflow.data.from_pandas(df, source=PATH)) or set "
        "reference_artifact"
    )


def _is_missing(exc: Any) -> bool:
    """Whether an MlflowException is the registry saying "no such thing".

    A missing registered model or run is RESOURCE_DOES_NOT_EXIST; a missing alias is
    INVALID_PARAMETER_VALUE "Registered model alias champion not found." (the sqlalchemy
    store and the REST server alike). Everything else (connection refused, 401, 5xx)
    is MLflow being unreachable, and must not read as a registry problem.
    """
    code = getattr(exc, "error_code", None)
    if code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(getattr(exc, "message", exc)).lower()
    return code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message


def _unreachable(tracking_uri: str, exc: BaseException) -> str:
    """'MLflow unreachable at URI: reason', the reason cut out of MLflow's long message.

    MLflow wraps a refused connection as "API request to <url> failed with exception
    HTTPConnectionPool(...): Max retries exceeded ... [Errno 111] Connection refused')";
    the user needs the last part (or the HTTP status), not 300 characters of URL.
    """
    from mltui.secrets import redact

    text = str(exc)
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    status = re.search(r"error code (\d{3})", text)
    if errno:
        reason = errno.group(1).strip()
    elif status:
        reason = f"HTTP {status.group(1)} ({_first_line(exc)[:120]})"
    elif "timed out" in text.lower():
        reason = "timed out"
    else:
        reason = _first_line(exc)
    return f'reference = "mlflow": MLflow unreachable at {redact(tracking_uri)}: {reason}'


def _context(dataset_input: Any) -> str | None:
    return next((t.value for t in dataset_input.tags if t.key == "mlflow.data.context"), None)


def _source_location(source: str | None) -> str | None:
    """The path/URI inside an MLflow dataset source JSON ({"uri": ...} for local files)."""
    if not source:
        return None
    try:
        parsed = json.loads(source)
    except ValueError:
        return None
    if not isinstance(parsed, dict):
        return None
    for key in ("uri", "path", "url"):
        value = parsed.get(key)
        if isinstance(value, str) and value:
            return value.removeprefix("file://")
    return None


def _first_line(exc: BaseException) -> str:
    from mltui.secrets import redact

    lines = str(exc).strip().splitlines()
    return redact(lines[0] if lines else type(exc).__name__)[:200]


def _local_data_files(path: str) -> list[str]:
    if os.path.isdir(path):
        return sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(path)
            for name in names
            if name.endswith((".parquet", ".csv", ".csv.gz"))
        )
    return [path]


# ---------------------------------------------------------------- reading


def read_files(files: tuple[str, ...], what: str) -> pd.DataFrame:
    """Concatenate parquet/csv files (local paths or fsspec URIs)."""
    import pandas as pd

    frames = []
    for path in files:
        try:
            if path.endswith((".csv", ".csv.gz")):
                frames.append(pd.read_csv(path))
            else:
                frames.append(pd.read_parquet(path))
        except ImportError as exc:  # e.g. s3:// without s3fs
            raise DriftInputError(f"cannot read {what} {path}: {_first_line(exc)}") from None
        except FileNotFoundError:
            raise DriftInputError(f"{what} file not found: {path}") from None
        except Exception as exc:  # noqa: BLE001 - a corrupt file is the user's to fix
            raise DriftInputError(f"cannot read {what} {path}: {_first_line(exc)}") from None
    if not frames:
        raise DriftInputError(f"no {what} files")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def keep_window(frame: pd.DataFrame, column: str, window: float | None) -> tuple[pd.DataFrame, Any]:
    """Rows whose timestamp is within ``window`` seconds of the *newest* timestamp.

    Relative to the newest row rather than to now: the result then depends only on
    the files (so unchanged files are a cache hit on every refresh), and logs that
    arrive in batches (hourly or daily exports) always give a full window instead
    of shrinking to nothing between batches. The newest timestamp is returned so
    the caller can say how old the data is.
    """
    import pandas as pd

    if column not in frame.columns:
        raise DriftInputError(f'timestamp_column "{column}" is not a column of the current data')
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        stamps = pd.to_datetime(raw, unit="s", utc=True, errors="coerce")
    else:
        stamps = pd.to_datetime(raw, utc=True, errors="coerce", format="mixed")
    newest = stamps.max()
    if pd.isna(newest):
        raise DriftInputError(
            f'current window is empty: no readable timestamps in "{column}" ({len(frame)} rows)'
        )
    if window is not None:
        frame = frame.loc[(stamps >= newest - pd.Timedelta(seconds=window)).to_numpy()]
    return frame, newest.to_pydatetime()


# ---------------------------------------------------------------- features


def is_id_like(name: str) -> bool:
    """Request/row identifiers: unique per row, so they always "drift"."""
    low = name.lower()
    return (
        low in _ID_NAMES
        or low.endswith(("_id", "-id", "_uuid", "_key"))
        or (len(name) > 2 and name.endswith("Id"))
    )


def choose_features(job: DriftJob, ref: pd.DataFrame, cur: pd.DataFrame) -> list[str]:
    """The configured columns, or the shared ones minus timestamp/id/excluded/datetime."""
    import pandas as pd

    if job.columns:
        for side, frame in (("reference", ref), ("current", cur)):
            missing = [c for c in job.columns if c not in frame.columns]
            if missing:
                raise DriftInputError(f"columns not in the {side} data: {', '.join(missing)}")
        return list(job.columns)
    shared = [c for c in ref.columns if c in set(cur.columns)]
    features = [
        c
        for c in shared
        if c != job.timestamp_column
        and c not in job.exclude
        and not is_id_like(str(c))
        and not pd.api.types.is_datetime64_any_dtype(ref[c])
        and not pd.api.types.is_datetime64_any_dtype(cur[c])
    ]
    if not features:
        raise DriftInputError(
            "no common columns to compare: reference has "
            f"{_names(ref.columns)}, current has {_names(cur.columns)}"
        )
    return features


def _names(columns: Any) -> str:
    names = [str(c) for c in columns]
    return ", ".join(names[:8]) + (f", … ({len(names)} in all)" if len(names) > 8 else "") or "none"


def clean_columns(
    features: list[str], ref: pd.DataFrame, cur: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Typed copies of the feature columns: (ref, cur, numerical, categorical).

    Numbers become float64 (nullable Int64/Float64 with pd.NA included); everything
    else becomes object strings with NaN for missing values, because pandas' NA in
    string columns breaks Evidently's presets. An all-null column, or a column that
    mixes numbers and strings, is an error naming the column.
    """
    import numpy as np
    import pandas as pd

    numerical: list[str] = []
    categorical: list[str] = []
    ref_out: dict[str, Any] = {}
    cur_out: dict[str, Any] = {}
    for col in features:
        r, c = ref[col], cur[col]
        for side, series in (("reference", r), ("current", c)):
            if series.isna().all():
                raise DriftInputError(
                    f'column "{col}" is all null in the {side} data '
                    f"({len(series)} rows); fix the pipeline or add it to exclude"
                )
            kind = pd.api.types.infer_dtype(series, skipna=True)
            if kind.startswith("mixed"):
                raise DriftInputError(
                    f'column "{col}" mixes value types in the {side} data ({kind}); '
                    "cast it to one type or add it to exclude"
                )
        r_num, c_num = _is_number(r), _is_number(c)
        if r_num and c_num:
            numerical.append(col)
            ref_out[col] = r.astype("float64")
            cur_out[col] = c.astype("float64")
        elif r_num != c_num:
            raise DriftInputError(
                f'column "{col}" is {_kind(r)} in the reference but {_kind(c)} in the current '
                "data; cast one side or add it to exclude"
            )
        else:
            categorical.append(col)
            ref_out[col] = r.astype(object).where(r.notna(), np.nan).map(_as_text)
            cur_out[col] = c.astype(object).where(c.notna(), np.nan).map(_as_text)
    return pd.DataFrame(ref_out), pd.DataFrame(cur_out), numerical, categorical


def _is_number(series: pd.Series) -> bool:
    import pandas as pd

    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _kind(series: pd.Series) -> str:
    return "numeric" if _is_number(series) else "text/categorical"


def _as_text(value: Any) -> Any:
    # Keep NaN as the missing marker; everything else compares as its string form
    # (so a bool column and a "True"/"False" column are the same categories).
    return value if isinstance(value, float) and value != value else str(value)


# ---------------------------------------------------------------- compute


def sample(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    """At most ``size`` rows (never fewer than MIN_SAMPLE), seeded."""
    size = max(size, MIN_SAMPLE)
    if len(frame) <= size:
        return frame
    return frame.sample(n=size, random_state=SEED)


def compute(job: DriftJob) -> dict[str, Any]:
    """Read, window, clean, sample, run Evidently; a plain dict for the parent."""
    ref_all = read_files(job.reference_files, "reference")
    cur_all = read_files(job.current_files, "current")
    newest = None
    if job.timestamp_column:
        cur_all, newest = keep_window(cur_all, job.timestamp_column, job.window)
    if len(ref_all) == 0:
        raise DriftInputError("reference data is empty (0 rows)")
    if len(cur_all) == 0:
        raise DriftInputError("current window is empty (0 rows)")
    features = choose_features(job, ref_all, cur_all)
    # Sample before cleaning: cleaning a 50k sample is cheaper than 1M rows. The
    # all-null check then sees only the sample, which is fine: a column null in
    # every sampled row is null in practice.
    ref_rows, cur_rows = len(ref_all), len(cur_all)
    ref_s = sample(ref_all[features], job.sample_size)
    cur_s = sample(cur_all[features], job.sample_size)
    del ref_all, cur_all
    ref, cur, numerical, categorical = clean_columns(features, ref_s, cur_s)
    snapshot = run_report(job, ref, cur, numerical, categorical)
    if job.html_path:
        snapshot.save_html(job.html_path)
    rows = features_from_snapshot(snapshot.dict(), numerical)
    for row in rows:
        row.update(histogram(ref[row["column"]], cur[row["column"]], row["column"] in numerical))
    drifted = [r["column"] for r in rows if r["drifted"]]
    return {
        "share": len(drifted) / len(rows) if rows else None,
        "drifted": drifted,
        "features": rows,
        "reference_rows": ref_rows,
        "current_rows": cur_rows,
        "sampled": (len(ref), len(cur)),
        "newest": newest,
    }


def run_report(
    job: DriftJob,
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    numerical: list[str],
    categorical: list[str],
) -> Any:
    """Evidently's DataDriftPreset over the cleaned sample; returns the Snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    # Column types are given, not guessed: Evidently would otherwise call a numeric
    # column with few distinct values categorical on one side and not the other.
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    features = numerical + categorical
    preset = DataDriftPreset(
        columns=features,
        method=job.method,
        threshold=job.threshold,
        per_column_method={k: v for k, v in job.column_methods.items() if k in features} or None,
        per_column_threshold={k: v for k, v in job.column_thresholds.items() if k in features}
        or None,
    )
    report = Report([preset], include_tests=True)
    # Current first, reference second (Evidently's order).
    return report.run(
        Dataset.from_pandas(cur, data_definition=definition),
        Dataset.from_pandas(ref, data_definition=definition),
    )


def features_from_snapshot(data: dict[str, Any], numerical: list[str]) -> list[dict[str, Any]]:
    """Per-feature rows from ``Snapshot.dict()``, most drifted first.

    The score comes from each ValueDrift metric, the verdict from its test (FAIL =
    drifted), so the numbers are exactly Evidently's.
    """
    verdicts = {
        t["metric_config"]["metric_id"]: t["status"] == "FAIL"
        for t in data.get("tests", [])
        if t.get("id") == "drift"
    }
    rows = []
    for metric in data.get("metrics", []):
        config = metric.get("config", {})
        if not str(config.get("type", "")).endswith("ValueDrift"):
            continue
        method = _SHORT_NAMES.get(config.get("method"), config.get("method") or "")
        score = finite(metric.get("value"))
        threshold = finite(config.get("threshold"))
        rows.append(
            {
                "column": config["column"],
                "method": method,
                "score": score,
                "threshold": threshold,
                "drifted": bool(verdicts.get(metric["id"], False)),
                "column_type": "num" if config["column"] in numerical else "cat",
                "severity": severity(method, score, threshold),
            }
        )
    rows.sort(key=lambda r: (not r["drifted"], -r["severity"], r["column"]))
    return rows


def severity(method: str, score: float | None, threshold: float | None) -> float:
    """How far past (or short of) its threshold a score is; higher = more drifted."""
    if score is None or not threshold:
        return 0.0
    if method in P_VALUE_TESTS:
        return threshold / max(score, 1e-300)
    return score / threshold


def histogram(ref: pd.Series, cur: pd.Series, numerical: bool) -> dict[str, Any]:
    """Small reference-vs-current distributions (shares per bin) for the TUI chart."""
    import numpy as np
    import pandas as pd

    if numerical:
        r = ref.dropna().to_numpy()
        c = cur.dropna().to_numpy()
        both = np.concatenate([r, c])
        both = both[np.isfinite(both)]
        if both.size == 0:
            return {"bins": [], "reference_share": [], "current_share": []}
        edges = np.histogram_bin_edges(both, bins=HIST_BINS)
        rc, _ = np.histogram(r, bins=edges)
        cc, _ = np.histogram(c, bins=edges)
        labels = [f"{e:.3g}" for e in edges[:-1]]
    else:
        counts = pd.concat([ref, cur]).value_counts()
        top = [str(v) for v in counts.index[:HIST_TOP_CATEGORIES]]
        rvc, cvc = ref.value_counts(), cur.value_counts()
        rc = np.array([rvc.get(k, 0) for k in top], dtype=float)
        cc = np.array([cvc.get(k, 0) for k in top], dtype=float)
        if len(counts) > HIST_TOP_CATEGORIES:
            top.append("other")
            rc = np.append(rc, ref.notna().sum() - rc.sum())
            cc = np.append(cc, cur.notna().sum() - cc.sum())
        labels = top
    rs, cs = max(float(np.sum(rc)), 1.0), max(float(np.sum(cc)), 1.0)
    return {
        "bins": labels,
        "reference_share": [round(float(x) / rs, 6) for x in rc],
        "current_share": [round(float(x) / cs, 6) for x in cc],
    }
