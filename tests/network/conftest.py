"""Fixtures of the network tests (the servers live in network_helpers.py)."""

from network_helpers import fake_api, private_ca, proxy  # noqa: F401
