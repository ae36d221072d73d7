"""SVG snapshots live in the top-level snapshots/ directory (DESIGN.md §5).

pytest-textual-snapshot stores them next to the tests by default; this overrides its
``snap_compare`` fixture to use an extension whose ``dirname`` is ``snapshots/<module>``.
Update snapshots per file or with ``-k``, never for a single ``file::test`` node id:
syrupy would then delete that module's other snapshots as unused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_textual_snapshot
from syrupy import SnapshotAssertion

SNAPSHOT_ROOT = Path(__file__).resolve().parents[2] / "snapshots"


class TopLevelSVGExtension(pytest_textual_snapshot.SVGImageExtension):
    """The plugin's SVG extension, writing to snapshots/<test module name>/."""

    @classmethod
    def dirname(cls, *, test_location: Any) -> str:
        return str(SNAPSHOT_ROOT / test_location.basename)


def _plugin_snap_compare() -> Callable[..., Any]:
    fixture = pytest_textual_snapshot.snap_compare
    unwrap = getattr(fixture, "_get_wrapped_function", None)
    return unwrap() if unwrap is not None else fixture.__wrapped__  # type: ignore[no-any-return]


@pytest.fixture
def snap_compare(
    snapshot: SnapshotAssertion, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., bool]:
    # The plugin's fixture picks its extension class from its module at setup time.
    monkeypatch.setattr(pytest_textual_snapshot, "SVGImageExtension", TopLevelSVGExtension)
    return _plugin_snap_compare()(snapshot, request)  # type: ignore[no-any-return]
