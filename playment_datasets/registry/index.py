"""The directory of a local registry: its layout, ``registry.json`` under its lock, and the
object store — what staging, commit, shards and maintenance work on.

:class:`RegistryDir` is handed down by the :class:`~playment_datasets.registry.registry.Registry`
face, so these modules never import the face back. The helpers that read an index
(:func:`check_index`, :func:`find_entry`, :func:`version_in`) serve local and remote
registries alike.

Example:
    >>> import tempfile
    >>> from playment_datasets.registry.store import ObjectStore
    >>> root = Path(tempfile.mkdtemp())
    >>> RegistryDir(root, 1.0, ObjectStore(root / "objects")).read()["batches"]
    {}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from playment_datasets.api.ids import validate_id
from playment_datasets.dataset.jsonfile import read_json
from playment_datasets.errors import CorruptDatasetError, DatasetNotFoundError, RegistryError
from playment_datasets.registry.lock import FileLock
from playment_datasets.registry.media import MediaIndex
from playment_datasets.registry.paths import scan_version_dirs, unsafe_reason, version_rel
from playment_datasets.registry.store import ObjectStore, atomic_write_json

if TYPE_CHECKING:
    from playment_datasets.dataset.dataset import Dataset

__all__ = [
    "INDEX_FORMAT",
    "REPAIR_HINT",
    "RegistryDir",
    "check_index",
    "find_entry",
    "version_in",
]

_T = TypeVar("_T")

#: Layout version of registry.json.
INDEX_FORMAT = 1

_VERSION_RE = re.compile(r"v?(\d{1,9})")


#: What to do about a damaged or missing registry.json.
REPAIR_HINT = (
    "run `playment-datasets repair` (Registry.repair()) to rebuild it from the manifests"
)


def _shape_problem(index: dict[str, Any]) -> str | None:
    """Where a format-1 index departs from the shape this library writes (None: fine)."""
    batches = index["batches"]
    if not isinstance(batches, dict):
        return f"'batches' is a {type(batches).__name__}, expected an object"
    for batch_id, entry in batches.items():
        at = f"batches[{batch_id!r}]"
        if not isinstance(entry, dict):
            return f"{at} is a {type(entry).__name__}, expected an object"
        if not isinstance(entry.get("project_id"), str):
            return f"{at} has no project_id string"
        versions, tags = entry.get("versions"), entry.setdefault("tags", {})
        if not isinstance(versions, dict) or not isinstance(tags, dict):
            return f"{at} needs 'versions' and 'tags' objects"
        for v, info in versions.items():
            if not (isinstance(v, str) and v.isdigit() and isinstance(info, dict)):
                return f"{at}.versions[{v!r}] is not a numbered version record"
            for key in ("content_id", "path", "created_at"):
                if not isinstance(info.get(key), str):
                    return f"{at}.versions[{v!r}] has no {key} string"
        for name, v in tags.items():
            if isinstance(v, bool) or not isinstance(v, int):
                return f"{at}.tags[{name!r}] is {v!r}, expected a version number"
    return None


def check_index(index: Any, where: object) -> dict[str, Any]:
    """A parsed registry.json, checked to be of the format and shape this library reads."""
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        got = index.get("format") if isinstance(index, dict) else type(index).__name__
        raise RegistryError(
            f"registry index {where} has format {got!r}; this library reads format "
            f"{INDEX_FORMAT}. Upgrade playment_datasets, point it at another registry, or "
            f"{REPAIR_HINT}."
        )
    index.setdefault("batches", {})
    problem = _shape_problem(index)
    if problem is not None:
        raise CorruptDatasetError(f"registry index {where} is damaged: {problem}; {REPAIR_HINT}.")
    return index


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def find_entry(index: dict[str, Any], batch_id: str, location: str) -> dict[str, Any]:
    """The index entry of a batch with versions; DatasetNotFoundError naming what
    the registry at ``location`` holds otherwise."""
    validate_id(batch_id, "batch id")
    entry = index["batches"].get(batch_id)
    if not entry or not entry.get("versions"):
        known = sorted(b for b, e in index["batches"].items() if e.get("versions"))
        held = (
            f"it holds batches {_join([repr(b) for b in known[:20]])}"
            + (f" and {len(known) - 20} more" if len(known) > 20 else "")
            if known
            else "it is empty"
        )
        raise DatasetNotFoundError(
            f"no batch {batch_id!r} in the registry at {location}; {held}. "
            f"Pull it first with pds.pull(PROJECT_ID, {batch_id!r}) or check --registry."
        )
    return entry


def version_in(entry: dict[str, Any], batch_id: str, version: int | str) -> int:
    """The version number that ``version`` (``"latest"``, ``3``, ``"v3"``, a tag) names."""
    versions = sorted(int(v) for v in entry["versions"])
    tags = entry.get("tags", {})
    n: int | None = None
    if isinstance(version, bool):
        pass
    elif isinstance(version, int):
        n = version
    elif isinstance(version, str):
        text = version.strip()
        if text == "latest":
            return versions[-1]
        m = _VERSION_RE.fullmatch(text)
        if m:
            n = int(m.group(1))
        elif text in tags:
            n = int(tags[text])
    if n is not None and n in versions:
        return n
    tag_part = f" and tags {_join([repr(t) for t in sorted(tags)])}" if tags else " and no tags"
    raise DatasetNotFoundError(
        f"batch {batch_id!r} has no version {version!r}: it has versions "
        f"{', '.join(str(v) for v in versions)}{tag_part}; use one of those (or 'latest')."
    )


def version_info(
    index: dict[str, Any], batch_id: str, version: int | str, location: str
) -> tuple[str, int, dict[str, Any]]:
    """``(project_id, version number, index record of the version)``."""
    entry = find_entry(index, batch_id, location)
    n = version_in(entry, batch_id, version)
    return entry["project_id"], n, entry["versions"][str(n)]


@dataclass(frozen=True)
class RegistryDir:
    """A local registry directory: ``root``, the lock timeout and the object store."""

    root: Path
    lock_timeout: float
    objects: ObjectStore

    def location(self, rel: str = "") -> str:
        """Where ``rel`` (a path relative to the root) is, for messages and tables."""
        return str(self.root / rel) if rel else str(self.root)

    @property
    def index_path(self) -> Path:
        return self.root / "registry.json"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the registry lock (every writer of registry.json takes it)."""
        with FileLock(self.root / "registry.lock", timeout=self.lock_timeout, what="registry lock"):
            yield

    def read(self) -> dict[str, Any]:
        """The parsed, checked index; CorruptDatasetError when it is unreadable, or
        missing while ``datasets/`` holds versions (it was deleted: nothing may then
        take the registry for empty)."""
        try:
            raw = read_json(self.index_path, "registry index")
        except FileNotFoundError:
            found = sum(1 for *_, problem in scan_version_dirs(self.root) if problem is None)
            if found:
                raise CorruptDatasetError(
                    f"registry index {self.index_path} is missing but {self.root / 'datasets'} "
                    f"holds {found} version director{'y' if found == 1 else 'ies'}; "
                    f"{REPAIR_HINT}."
                ) from None
            return {"format": INDEX_FORMAT, "batches": {}}
        except (RegistryError, OSError) as exc:
            detail = str(exc) if isinstance(exc, RegistryError) else exc.strerror or repr(exc)
            raise CorruptDatasetError(
                f"registry index {self.index_path} is unreadable ({detail}); {REPAIR_HINT}."
            ) from None
        return check_index(raw, self.index_path)

    def write(self, index: dict[str, Any]) -> None:
        atomic_write_json(self.index_path, index)

    def update(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        """Apply ``change`` to the index and write it back, atomically with respect to
        every other writer; an exception in ``change`` writes nothing."""
        with self.lock():
            index = self.read()
            result = change(index)
            self.write(index)
            return result

    def batch_dir(self, project_id: str, batch_id: str) -> Path:
        return self.root / "datasets" / project_id / batch_id

    def dir_versions(self, project_id: str, batch_id: str) -> list[int]:
        d = self.batch_dir(project_id, batch_id)
        if not d.is_dir():
            return []
        return [int(p.name[1:]) for p in d.iterdir() if re.fullmatch(r"v\d+", p.name)]

    def entry(self, index: dict[str, Any], batch_id: str) -> dict[str, Any]:
        return find_entry(index, batch_id, self.location())

    def resolve(self, batch_id: str, version: int | str = "latest") -> tuple[str, int]:
        project_id, n, _ = version_info(self.read(), batch_id, version, self.location())
        return project_id, n

    def version_dir(self, project_id: str, batch_id: str, n: int, info: dict[str, Any]) -> Path:
        """The directory of version ``n``, confined to the root: the index's ``path``
        must be the canonical one and nothing on the way may be a symlink."""
        rel = version_rel(project_id, batch_id, n)
        if info.get("path") != rel:
            raise CorruptDatasetError(
                f"registry.json puts {batch_id} v{n} at {info.get('path')!r}, but versions "
                f"live only at {rel!r}; {REPAIR_HINT}."
            )
        path = self.root / rel
        reason = unsafe_reason(self.root, path)
        if reason is not None:
            raise CorruptDatasetError(
                f"{batch_id} v{n} cannot be read safely: {reason}. Move the link away and "
                "run `playment-datasets repair`, or remove that version."
            )
        return path

    def load(self, batch_id: str, version: int | str = "latest") -> Dataset:
        """The Dataset of one version: reads only ``manifest.json``; tables load lazily."""
        from playment_datasets.dataset.dataset import Dataset  # pyarrow: not for JSON reads

        project_id, n, info = version_info(self.read(), batch_id, version, self.location())
        ds = Dataset(self.version_dir(project_id, batch_id, n, info), objects=self.objects.get)
        if ds.content_id != info["content_id"] or ds.version != n:
            raise CorruptDatasetError(
                f"manifest of {batch_id} v{n} ({ds.path}) does not match registry.json "
                f"(content {ds.content_id[:12]} vs {info['content_id'][:12]}); run verify() and "
                "remove or re-pull the damaged version."
            )
        ds.attach_media(MediaIndex(self.batch_dir(project_id, batch_id), self.objects,
                                   self.lock_timeout))
        return ds

    def check_owner(self, project_id: str, batch_id: str) -> None:
        """A batch id belongs to one project: refuse to stage it under another."""
        entry = self.read()["batches"].get(batch_id)
        if entry is not None and entry.get("versions") and entry["project_id"] != project_id:
            raise RegistryError(
                f"batch {batch_id!r} is registered under project {entry['project_id']!r}, not "
                f"{project_id!r}; batch ids are unique across projects. Check the project id."
            )
