"""The data an emulator serves: a batch of jobs, their result files and ground truth.

The generator (``generator.py``) builds these objects; the server (``server.py``)
serves them; tests compare what a loader produced against :class:`GroundTruth`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GeneratedBatch", "GeneratedJob", "GroundTruth", "MaskTruth"]


@dataclass
class MaskTruth:
    """What one generated mask file holds.

    ``pixels`` maps each lower-case ``#rrggbb`` colour present in a PNG to
    ``(n_pixels, x_min, y_min, x_max, y_max)``, the box normalized on pixel edges
    (``x_min = col_min / width``, ``x_max = (col_max + 1) / width``). ``points`` maps
    each label key of a PCD or label file to its point count. ``unknown`` holds the
    colours / keys present in the file that the result's legend does not list.
    """

    kind: str
    width: int | None = None
    height: int | None = None
    n_points: int | None = None
    pixels: dict[str, tuple[int, float, float, float, float]] = field(default_factory=dict)
    points: dict[int, int] = field(default_factory=dict)
    unknown: set[Any] = field(default_factory=set)


@dataclass
class GroundTruth:
    """What a correct loader must find in a batch (or in one job).

    Counts follow the table definitions of ``docs/schema.md``: ``annotations_by_type``
    counts rows of the ``annotations`` table (one per object, per frame for video and
    3D), ``attributes`` counts exploded rows keyed by ``(name, value)``, and so on.
    """

    jobs_by_status: Counter[str] = field(default_factory=Counter)
    jobs_by_kind: Counter[str] = field(default_factory=Counter)
    annotations_by_type: Counter[str] = field(default_factory=Counter)
    annotations_by_label: Counter[tuple[str, str]] = field(default_factory=Counter)
    attributes: Counter[tuple[str, str]] = field(default_factory=Counter)
    points: int = 0
    edges: int = 0
    cuboids_3d: int = 0
    frames: int = 0
    segments: int = 0
    #: mask URL → what the file holds (segmentation jobs only).
    masks: dict[str, MaskTruth] = field(default_factory=dict)

    def add(self, other: GroundTruth) -> None:
        """Add the counts of ``other`` into this one (used to sum jobs into a batch)."""
        for name in ("jobs_by_status", "jobs_by_kind", "annotations_by_type",
                     "annotations_by_label", "attributes"):
            getattr(self, name).update(getattr(other, name))
        for name in ("points", "edges", "cuboids_3d", "frames", "segments"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.masks.update(other.masks)


@dataclass
class GeneratedJob:
    """One job of a batch, as the Playment API would describe it.

    ``result`` is the parsed result JSON (``None`` for a job that is not completed);
    ``raw_result`` overrides the bytes served for it (to serve malformed files).
    ``assets`` maps storage paths (``"masks/…png"``) to bytes of files the result refers
    to, such as segmentation masks.
    """

    job_id: str
    reference_id: str
    status: str
    kind: str
    result: dict[str, Any] | None
    work_flow_id: str = ""
    tag: str = ""
    priority_weight: int = 5
    n_frames: int = 1
    n_annotations: int = 0
    raw_result: bytes | None = None
    assets: dict[str, bytes] = field(default_factory=dict)
    truth: GroundTruth = field(default_factory=GroundTruth)

    @property
    def result_bytes(self) -> bytes | None:
        """The exact bytes served as this job's result file (``None``: no result)."""
        if self.raw_result is not None:
            return self.raw_result
        if self.result is None:
            return None
        return json.dumps(self.result, separators=(",", ":")).encode()


@dataclass
class GeneratedBatch:
    """A batch of jobs with the ground truth of all of them together."""

    project_id: str
    batch_id: str
    name: str
    jobs: list[GeneratedJob]

    @property
    def truth(self) -> GroundTruth:
        total = GroundTruth()
        for job in self.jobs:
            total.add(job.truth)
        return total
