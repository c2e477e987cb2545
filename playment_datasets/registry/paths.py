"""Paths inside a registry that can be trusted: confined to the root, never through a
symlink, and version directories whose manifest says what the index says.

Nothing read from ``registry.json`` or a manifest becomes a path as it is: a version's
directory is always ``datasets/<project_id>/<batch_id>/v<N>`` built from validated ids,
and every component below the root is checked not to be a symbolic link before anything
under it is read for gc or deleted. Deleting never follows a symlink.

Example:
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> version_rel("p1", "b1", 3)
    'datasets/p1/b1/v3'
    >>> unsafe_reason(root, root / "datasets" / "p1") is None
    True
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playment_datasets.api.ids import validate_id
from playment_datasets.dataset.jsonfile import read_json
from playment_datasets.errors import CorruptDatasetError, InvalidIdError, RegistryError

logger = logging.getLogger(__name__)

__all__ = [
    "check_version_manifest",
    "read_version_manifest",
    "remove_tree",
    "scan_version_dirs",
    "unsafe_reason",
    "version_rel",
]

_VDIR_RE = re.compile(r"v(\d{1,9})")


def version_rel(project_id: str, batch_id: str, version: int) -> str:
    """The only place a version may live, relative to the root (ids validated)."""
    validate_id(project_id, "project id")
    validate_id(batch_id, "batch id")
    return f"datasets/{project_id}/{batch_id}/v{int(version)}"


def unsafe_reason(root: Path, path: Path) -> str | None:
    """Why ``path`` cannot be trusted as a place under ``root`` (None when it can).

    ``path`` must lie lexically under ``root`` (no ``..``) and no component between the
    root and ``path`` (``path`` included) may be a symbolic link. A missing component
    is fine: there is nothing to follow.
    """
    try:
        rel = path.relative_to(root)
    except ValueError:
        return f"{path} is outside the registry root {root}"
    if any(part in ("", ".", "..") for part in rel.parts):
        return f"{path} is not a plain path under {root}"
    current = root
    for part in rel.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{current} cannot be inspected ({exc.strerror or type(exc).__name__})"
        if stat.S_ISLNK(mode):
            return f"{current} is a symbolic link (to {os.readlink(current)!r})"
    return None


def remove_tree(root: Path, path: Path) -> bool:
    """Delete ``path`` (a directory tree or a file) without following any symlink.

    Refuses (CorruptDatasetError, nothing deleted) when ``path`` is outside ``root`` or
    reached through a symlinked directory; a symlink at ``path`` itself is unlinked, never
    its target. Returns whether something was removed.
    """
    reason = unsafe_reason(root, path.parent)
    if reason is not None:
        raise CorruptDatasetError(
            f"refusing to delete {path}: {reason}. Nothing was deleted; move the link away "
            "and run `playment-datasets repair`."
        )
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(mode):
        # rmtree never follows symlinks inside the tree (it unlinks them)
        shutil.rmtree(path, onerror=_ignore_vanished)
    else:
        path.unlink(missing_ok=True)
    return True


def _ignore_vanished(func: Any, path: str, exc_info: Any) -> None:
    if not isinstance(exc_info[1], FileNotFoundError):
        raise exc_info[1]


def check_version_manifest(
    manifest: Any, project_id: str, batch_id: str, version: int
) -> dict[str, Any]:
    """``manifest`` when it is a well-formed manifest of exactly that version; else
    CorruptDatasetError saying what is wrong. (Its content id is checked by the callers
    that need it, with ``commit.content_id_of``.)"""
    if not isinstance(manifest, dict):
        raise CorruptDatasetError(f"it is a JSON {type(manifest).__name__}, not an object")
    for key, kind in (("version", int), ("project_id", str), ("batch_id", str),
                      ("content_id", str), ("jobs", dict), ("files", dict), ("counts", dict),
                      ("tables", list)):  # fmt: skip
        if not isinstance(manifest.get(key), kind) or isinstance(manifest.get(key), bool):
            raise CorruptDatasetError(
                f"its {key!r} is {type(manifest.get(key)).__name__}, expected {kind.__name__}"
            )
    got = (manifest["project_id"], manifest["batch_id"], manifest["version"])
    if got != (project_id, batch_id, version):
        raise CorruptDatasetError(
            f"it describes {got[1]} v{got[2]} of project {got[0]}, not {batch_id} v{version} "
            f"of project {project_id}"
        )
    if not all(isinstance(v, dict) for v in manifest["jobs"].values()):
        raise CorruptDatasetError("its 'jobs' entries are not all objects")
    return manifest


def read_version_manifest(
    root: Path, project_id: str, batch_id: str, version: int
) -> dict[str, Any]:
    """The checked manifest of a version directory reached without any symlink.

    Raises CorruptDatasetError (reason in the message, no remedy) otherwise.
    """
    vdir = root / version_rel(project_id, batch_id, version)
    mpath = vdir / "manifest.json"
    reason = unsafe_reason(root, mpath)
    if reason is not None:
        raise CorruptDatasetError(reason)
    try:
        manifest = read_json(mpath, "manifest")
    except FileNotFoundError:
        raise CorruptDatasetError(f"{mpath} is missing") from None
    except (OSError, RegistryError) as exc:
        raise CorruptDatasetError(f"{mpath} is unreadable ({exc})") from None
    try:
        return check_version_manifest(manifest, project_id, batch_id, version)
    except CorruptDatasetError as exc:
        raise CorruptDatasetError(f"{mpath} is not a manifest of that version: {exc}") from None


def _real_subdirs(directory: Path) -> Iterator[tuple[Path, bool]]:
    """``(entry, is_symlink)`` for each directory-like entry; never follows a link."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return
    for e in entries:
        if e.is_symlink():
            yield Path(e.path), True
        elif e.is_dir(follow_symlinks=False):
            yield Path(e.path), False


def scan_version_dirs(root: Path) -> Iterator[tuple[str, str, int, Path, str | None]]:
    """Every ``datasets/<p>/<b>/v<N>`` entry as ``(project, batch, N, path, problem)``.

    ``problem`` is None for a real directory with valid ids, else why it is not one (a
    symlink, an invalid id). Symlinked project or batch directories are reported with
    version 0 and never entered.
    """
    datasets = root / "datasets"
    if unsafe_reason(root, datasets) is not None:
        yield "", "", 0, datasets, unsafe_reason(root, datasets)
        return
    for pdir, plink in _real_subdirs(datasets):
        if plink:
            yield pdir.name, "", 0, pdir, f"{pdir} is a symbolic link"
            continue
        for bdir, blink in _real_subdirs(pdir):
            if blink:
                yield pdir.name, bdir.name, 0, bdir, f"{bdir} is a symbolic link"
                continue
            for vdir, vlink in _real_subdirs(bdir):
                m = _VDIR_RE.fullmatch(vdir.name)
                if not m:
                    continue
                problem = f"{vdir} is a symbolic link" if vlink else None
                try:
                    validate_id(pdir.name, "project id")
                    validate_id(bdir.name, "batch id")
                except InvalidIdError as exc:
                    problem = str(exc)
                yield pdir.name, bdir.name, int(m.group(1)), vdir, problem
