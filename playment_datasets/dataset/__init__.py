"""Stage 2, one version of a batch: :class:`~playment_datasets.dataset.dataset.Dataset`
(lazy tables over its Parquet files), version diffs and exports (COCO, YOLO, CSV).

Reads a version directory; knows nothing of the registry that holds it. May import the
foundation and stage 1 (``api``, ``normalize``, ``emulator``) and its own modules.
"""
