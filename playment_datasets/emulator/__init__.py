"""A local Playment API for tests, demos, notebooks and benchmarks.

:class:`Emulator` serves generated batches over real HTTP on loopback (an API host and a
separate signed-URL storage host), with optional latency and faults; ``generate_batch``
builds deterministic batches in every Playment result format.

Example:
    >>> from playment_datasets.emulator import Emulator, GeneratedBatch
    >>> with Emulator(GeneratedBatch("p1", "b1", "Batch 1", jobs=[])) as emu:
    ...     emu.project_id, emu.batch_id
    ('p1', 'b1')
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playment_datasets._public import lazy_names

if TYPE_CHECKING:
    from playment_datasets.emulator.batch import (
        GeneratedBatch,
        GeneratedJob,
        GroundTruth,
        MaskTruth,
    )
    from playment_datasets.emulator.faults import FaultPlan
    from playment_datasets.emulator.generator import generate_batch
    from playment_datasets.emulator.server import Emulator, EmulatorStats

__all__ = [
    "Emulator",
    "EmulatorStats",
    "FaultPlan",
    "GeneratedBatch",
    "GeneratedJob",
    "GroundTruth",
    "MaskTruth",
    "generate_batch",
]


#: Names imported on first use. The generator is the heaviest part of the package and
#: the server does not need it to serve a batch built by hand; nothing of the server
#: (http.server, numpy) is needed to build the emulator's command-line options.
_LAZY = {
    **dict.fromkeys(["GeneratedBatch", "GeneratedJob", "GroundTruth", "MaskTruth"],
                    "playment_datasets.emulator.batch"),
    "FaultPlan": "playment_datasets.emulator.faults",
    "generate_batch": "playment_datasets.emulator.generator",
    "Emulator": "playment_datasets.emulator.server",
    "EmulatorStats": "playment_datasets.emulator.server",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
