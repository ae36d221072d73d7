"""Query building (pure functions): grouping, selectors, the 11,000-point step rule."""

from __future__ import annotations

from mltui.collectors import promql
from mltui.config import parse_config
from mltui.presets import BUILTIN_PRESETS


def _config(n: int, extra: str = "") -> str:
    models = "\n".join(f'[[models]]\nname = "m{i}"\nmetrics = "kserve"\n' for i in range(n))
    return f'[prometheus]\nurl = "http://x"\n{models}\n{extra}'


def test_groups_do_not_grow_with_the_fleet() -> None:
    small = parse_config(_config(3))
    big = parse_config(_config(400))
    assert len(promql.group_models(small, small.models)) == 1
    groups = promql.group_models(big, big.models)
    assert len(groups) == 1 and len(groups[0].models) == 400
    assert promql.instant_queries(groups[0], 300).keys() == {"buckets", "requests", "errors"}
    # Latency quantiles come from one bucket-rate query (client-side quantiles).
    assert "histogram_quantile" not in promql.instant_queries(groups[0], 300)["buckets"]


def test_selectors_with_other_keys_form_their_own_group() -> None:
    config = parse_config(
        _config(2)
        + '[[models]]\nname = "x"\nselector = { app = "x", ns = "ml" }\n'
        + '[[models]]\nname = "y"\nselector = { app = "y", ns = "ml" }\n'
    )
    groups = promql.group_models(config, config.models)
    assert sorted(g.keys for g in groups) == [("app", "ns"), ("model_name",)]
    xy = next(g for g in groups if g.keys == ("app", "ns"))
    assert promql.group_matchers(xy) == ['app=~"x|y"', 'ns="ml"']


def test_values_are_regex_escaped_and_quoted() -> None:
    assert promql.regex_alternation(["a.b", "c+d"]) == r"a\.b|c\+d"
    assert promql.quote('say "hi"\\') == '"say \\"hi\\"\\\\"'


def test_vector_merges_matchers_into_a_selector() -> None:
    assert promql.vector("x_total") == "x_total"
    assert promql.vector("x_total", 'a="1"') == 'x_total{a="1"}'
    assert promql.vector('x_total{code=~"5.."}', 'a="1"') == 'x_total{code=~"5..", a="1"}'
    assert promql.vector("vllm:request_success_total", 'a="1"') == (
        'vllm:request_success_total{a="1"}'
    )


def test_track_split_rides_in_one_query() -> None:
    query = promql.counter_query(
        "request_predict_seconds_count",
        BUILTIN_PRESETS["kserve"],
        ['model_name="a"'],
        ["model_name"],
        "5m",
    )
    assert query.count(" or ") == 2
    assert 'track="canary"' in query and 'track!="canary"' in query
    assert "label_replace(" in query and '"stable"' in query
    # A preset without a track label: one plain aggregation.
    plain = promql.counter_query("x", BUILTIN_PRESETS["vllm"], [], ["model_name"], "5m")
    assert " or " not in plain


def test_range_step_never_exceeds_the_point_limit() -> None:
    for window, points in ((3600, 120), (7 * 86400, 10**7), (60, 11_000), (1, 5)):
        step = promql.range_step(window, points)
        assert int(window / step) + 1 <= promql.MAX_POINTS
        assert int(window / step) + 1 <= max(points, 2)
    assert promql.range_step(3600, 121) == 30.0


def test_counter_only_presets_have_no_bucket_query() -> None:
    config = parse_config(_config(0) + '[[models]]\nname = "t"\nmetrics = "triton"\n')
    (group,) = promql.group_models(config, config.models)
    assert promql.bucket_rates_query(group, 300) is None
    assert promql.instant_queries(group, 300).keys() == {"mean", "requests", "errors"}


def test_bucket_query_does_not_repeat_a_selector_key() -> None:
    """A selector that already uses the track label is not grouped by it twice."""
    config = parse_config(
        _config(0) + '[[models]]\nname = "x"\nselector = { model_name = "x", track = "a" }\n'
    )
    (group,) = promql.group_models(config, config.models)
    query = promql.bucket_rates_query(group, 60)
    assert query is not None and query.startswith("sum by (model_name, track, le) (rate(")
