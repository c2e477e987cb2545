"""The package's public names, for the two places a lower stage hands work upward.

A Dataset (stage 2) downloads media with the pull stage's ``fetch_media`` (4), and
``Registry("s3://…")`` (3) builds the remote subclass defined beside it. Neither may
import the higher module; both ask the package, which is always loaded before any of
its modules and imports its public names on first use.

Example:
    >>> callable(public("fetch_media"))
    True
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["public"]


def public(name: str) -> Any:
    """``playment_datasets.<name>``, imported on first use."""
    return getattr(sys.modules["playment_datasets"], name)
