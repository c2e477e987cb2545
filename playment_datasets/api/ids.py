"""Validation of ids that come from outside (Playment, the command line, a notebook).

Playment ids are opaque strings (the documented examples are not even valid UUIDs), so
they are not parsed; they are only checked to be safe as one path component and one URL
path segment: 1–128 characters of ASCII letters, digits, ``.``, ``_`` and ``-``, not
``.`` or ``..`` and not starting with a dot. Every id is validated before it becomes part
of a path.

Example:
    >>> from playment_datasets.api.ids import validate_id
    >>> validate_id("fde5ert6-eb32-481a-807a-03a0428ca836", "job id")
    'fde5ert6-eb32-481a-807a-03a0428ca836'
"""

from __future__ import annotations

import re

from playment_datasets.errors import InvalidIdError

__all__ = ["MAX_ID_LENGTH", "validate_id"]

#: The longest id accepted.
MAX_ID_LENGTH = 128

_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_SHOWN = 60  # characters of a bad value quoted in a message


def _describe(value: object) -> str:
    """A safe, short rendering of a rejected value (repr shows NUL, newlines, escapes)."""
    if not isinstance(value, str):
        return f"<{type(value).__name__}>"
    if len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}… ({len(value)} characters)"
    return repr(value)


def validate_id(value: str, what: str = "id") -> str:
    """Return ``value`` unchanged if it is a safe id, else raise :class:`InvalidIdError`.

    ``what`` names the id in the message (``"batch id"``, ``"job id"``, …).

    Example:
        >>> validate_id("batch_01", "batch id")
        'batch_01'
        >>> validate_id("../etc", "batch id")
        Traceback (most recent call last):
        ...
        playment_datasets.errors.InvalidIdError: invalid batch id '../etc': ...
    """
    if isinstance(value, str) and _ID_RE.fullmatch(value) is not None and not value.startswith("."):
        return value
    shown = _describe(value)
    if not isinstance(value, str):
        got = f"a value of type {type(value).__name__}"
    elif not value:
        got = "an empty string"
    elif len(value) > MAX_ID_LENGTH:
        got = f"{len(value)} characters"
    elif _ID_RE.fullmatch(value):
        got = "a value starting with a dot"
    else:
        bad = sorted({c for c in value if not re.fullmatch(r"[A-Za-z0-9._-]", c)})
        got = "the disallowed character(s) " + " ".join(repr(c) for c in bad[:10])
    raise InvalidIdError(
        f"invalid {what} {shown}: expected 1–{MAX_ID_LENGTH} characters of letters, digits, "
        f"'.', '_' or '-', not starting with a dot; got {got}. "
        "Check the id you copied from Playment."
    )
