"""Reading the JSON files of a version and of a registry (manifests, ``registry.json``).

Kept apart from ``dataset.py`` so that what reads only JSON (``list``, ``tag``, the
registry index) imports neither pyarrow nor pandas.

Example:
    >>> import json, tempfile
    >>> from pathlib import Path
    >>> path = Path(tempfile.mkdtemp()) / "manifest.json"
    >>> _ = path.write_text(json.dumps({"version": 1}))
    >>> read_json(path, "manifest")
    {'version': 1}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from playment_datasets.errors import RegistryError

__all__ = ["read_json"]


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file, turning a parse error into a RegistryError that names the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = "UTF-8" if isinstance(exc, UnicodeDecodeError) else "JSON"
        raise RegistryError(
            f"{what} {path} is not valid {kind} ({exc}); expected a file written by "
            "playment_datasets. Run verify() to see what else is damaged."
        ) from None
    except IsADirectoryError:
        raise RegistryError(
            f"{what} {path} is a directory; expected a JSON file written by playment_datasets."
        ) from None
