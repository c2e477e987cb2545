"""Optional progress bars that stay quiet: a widget in Jupyter when it can be one.

In a Jupyter kernel the bar is tqdm's notebook widget only when ``ipywidgets`` can be
imported; without it ``tqdm.auto`` would print ``TqdmWarning: IProgress not found``
and a text bar that redraws as new stderr lines, so a plain text bar redrawn at most
every :data:`NOTEBOOK_MININTERVAL` seconds is used instead. In a terminal the bar
redraws at most every :data:`TERMINAL_MININTERVAL` seconds. Off otherwise.

Example:
    >>> from playment_datasets.pull.progress import make_progress
    >>> with make_progress(False, desc="fetching", total=3) as bar:
    ...     bar.update(3)
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

__all__ = ["NullProgress", "make_progress", "progress_wanted"]

TERMINAL_MININTERVAL = 0.5
NOTEBOOK_MININTERVAL = 2.0


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


def _has_widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def make_progress(progress: bool | None, *, desc: str, unit: str = "it", total: int | None = None):
    """A tqdm bar suited to where it is shown (see above), else a :class:`NullProgress`."""
    if not progress_wanted(progress):
        return NullProgress()
    if "ipykernel" in sys.modules and _has_widgets():
        from tqdm.notebook import tqdm as notebook_tqdm

        return notebook_tqdm(desc=desc, unit=unit, total=total, leave=False)
    from tqdm.std import tqdm

    interval = NOTEBOOK_MININTERVAL if "ipykernel" in sys.modules else TERMINAL_MININTERVAL
    return tqdm(desc=desc, unit=unit, total=total, dynamic_ncols=True, leave=False,
                mininterval=interval, file=sys.stderr)
