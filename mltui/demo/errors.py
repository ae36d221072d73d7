"""The demo's one error type (its own module so the workspace and the environment share it)."""

from __future__ import annotations


class DemoError(Exception):
    """The demo could not start; the message says why (with the failing process' log)."""
