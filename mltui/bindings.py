"""Ids of every key binding, so `[keys]` in the config can be validated without Textual.

tests/test_layers.py checks this list against the BINDINGS of the app and its screens.
"""

BINDING_IDS: frozenset[str] = frozenset(
    {
        "back", "clear_filter", "compare", "confirm_cancel", "diff_only", "export_drift",
        "filter", "help", "help_close", "mark", "next_tab", "palette", "pause", "prev_tab",
        "promote", "quit", "refresh", "retrain", "rollback", "sort", "sort_reverse",
        "window_15m", "window_1h", "window_24h", "window_6h",
    }
)  # fmt: skip
