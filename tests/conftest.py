"""Shared fixtures: a clean environment for every test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_playment_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own PLAYMENT_* settings."""
    for name in list(os.environ):
        if name.startswith("PLAYMENT_"):
            monkeypatch.delenv(name, raising=False)
