"""Every test under tests/registry_trust carries the ``registry_trust`` marker; the
scenarios reuse the child-process helpers of tests/reliability."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(_HERE.parent / "reliability"))  # reliability_helpers


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.registry_trust)
