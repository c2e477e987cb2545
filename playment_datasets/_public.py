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

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_names", "public"]


def public(name: str) -> Any:
    """``playment_datasets.<name>``, imported on first use."""
    return getattr(sys.modules["playment_datasets"], name)


def lazy_names(package: str, names: Mapping[str, str]
               ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562) for names imported on
    first use: ``names`` maps each name to the module that defines it.

    Example:
        >>> getattr_, dir_ = lazy_names("pkg", {"dumps": "json"})
        >>> getattr_("dumps")({"a": 1}), "dumps" in dir_()
        ('{"a": 1}', True)
    """
    namespace = sys.modules[package].__dict__ if package in sys.modules else {}

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *names})

    return __getattr__, __dir__
