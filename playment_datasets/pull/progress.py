"""Optional progress bars: tqdm.auto when wanted, a do-nothing bar otherwise.

Example:
    >>> from playment_datasets.pull.progress import make_progress
    >>> with make_progress(False, desc="fetching", total=3) as bar:
    ...     bar.update(3)
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["NullProgress", "make_progress", "progress_wanted"]


class NullProgress:
    """A progress bar that shows nothing (used when progress is off)."""

    def __init__(self, *args: Any, total: int | None = None, **kwargs: Any) -> None:
        self.n = 0
        self.total = total

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_wanted(progress: bool | None) -> bool:
    """Resolve ``progress=None``: on in a terminal or a Jupyter kernel, off otherwise."""
    if progress is not None:
        return progress
    if "ipykernel" in sys.modules:
        return True
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())


def make_progress(progress: bool | None, *, desc: str, unit: str = "it", total: int | None = None):
    """A tqdm.auto bar when progress is wanted, else a :class:`NullProgress`."""
    if not progress_wanted(progress):
        return NullProgress()
    from tqdm.auto import tqdm

    return tqdm(desc=desc, unit=unit, total=total, dynamic_ncols=True, leave=False)
