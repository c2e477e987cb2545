"""Shared fixtures: a clean environment for every test."""

from __future__ import annotations

import os

import pytest

# A developer's proxy would otherwise carry the loopback tests' requests away.
_NETWORK_ENV = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "requests_ca_bundle"}


@pytest.fixture(autouse=True)
def _clean_playment_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own PLAYMENT_* settings."""
    for name in list(os.environ):
        if name.startswith("PLAYMENT_") or name.lower() in _NETWORK_ENV:
            monkeypatch.delenv(name, raising=False)
