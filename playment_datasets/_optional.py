"""Import of optional dependencies, with an error that says which extra to install.

Example:
    >>> import_optional("json", extra="none").__name__
    'json'
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["import_optional"]


def import_optional(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError naming ``pip install playment-datasets[extra]``.

    Example:
        >>> import_optional("no_such_module_xyz", extra="duckdb")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ImportError: this feature needs the optional package 'no_such_module_xyz', ...
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"this feature needs the optional package {module!r}, which is not installed "
            f"({exc}). Install it with: pip install 'playment-datasets[{extra}]'"
        ) from exc
