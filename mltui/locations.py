"""Where mltui reads its config and writes its state (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path

APP = "mltui"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config") / APP


def state_dir() -> Path:
    """Audit log lives here: $XDG_STATE_HOME/mltui."""
    return _xdg("XDG_STATE_HOME", ".local/state") / APP


def cache_dir() -> Path:
    """Demo workspace and drift cache: $XDG_CACHE_HOME/mltui."""
    return _xdg("XDG_CACHE_HOME", ".cache") / APP


def default_config_path() -> Path:
    return config_dir() / "config.toml"


def audit_log_path() -> Path:
    return state_dir() / "audit.jsonl"


def find_config(explicit: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The config file to read and how it was chosen.

    Order: ``--config``, ``$MLTUI_CONFIG``, ``$XDG_CONFIG_HOME/mltui/config.toml``.
    An explicit path (flag or variable) must exist; the XDG default may be absent,
    which yields ``(None, reason)`` and an empty config.
    """
    if explicit:
        return Path(explicit).expanduser(), "--config"
    env = os.environ.get("MLTUI_CONFIG")
    if env:
        return Path(env).expanduser(), "$MLTUI_CONFIG"
    default = default_config_path()
    if default.is_file():
        return default, "default"
    return None, f"no config file at {default}"
