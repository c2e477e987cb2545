"""playment_datasets: Playment annotation batches as versioned pandas/Parquet datasets.

Example:
    >>> import playment_datasets as pds
    >>> ds = pds.pull("PROJECT_ID", "BATCH_ID")   # doctest: +SKIP
    >>> ds.annotations.query("type == 'rectangle'")  # doctest: +SKIP
"""

from __future__ import annotations

from playment_datasets._version import __version__
from playment_datasets.api.client import FetchedResult, PlaymentClient, RetryPolicy, Timeouts  # noqa: E402
from playment_datasets.api.ids import validate_id  # noqa: E402
from playment_datasets.dataset.dataset import Dataset, DatasetView  # noqa: E402
from playment_datasets.dataset.diff import DatasetDiff  # noqa: E402
from playment_datasets.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    CorruptDatasetError,
    DatasetNotFoundError,
    InvalidIdError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PlaymentDatasetsError,
    PullError,
    RegistryError,
    RegistryLockError,
    ResultFormatError,
    ServerError,
    TransportError,
)
from playment_datasets.normalize import BatchNormalizer, normalize_result, to_pixels  # noqa: E402
from playment_datasets.pull.media import fetch_media  # noqa: E402
from playment_datasets.pull.orchestrate import pull  # noqa: E402
from playment_datasets.registry.registry import CommitResult, Registry, load  # noqa: E402
from playment_datasets.registry.remote import RemoteDataset, RemoteRegistry  # noqa: E402
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES

# Dataset (stage 2) cannot import the pull stage (4) that downloads media: hand it over.
Dataset.media_fetcher = fetch_media

__all__ = [
    "APIError",
    "BatchNormalizer",
    "CommitResult",
    "Dataset",
    "DatasetView",
    "DatasetDiff",
    "FetchedResult",
    "PlaymentClient",
    "Registry",
    "RemoteDataset",
    "RemoteRegistry",
    "RetryPolicy",
    "Timeouts",
    "fetch_media",
    "load",
    "normalize_result",
    "pull",
    "to_pixels",
    "validate_id",
    "AuthenticationError",
    "ConfigurationError",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "InvalidIdError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlaymentDatasetsError",
    "PullError",
    "RegistryError",
    "RegistryLockError",
    "ResultFormatError",
    "SCHEMA_VERSION",
    "ServerError",
    "TABLE_NAMES",
    "TransportError",
    "__version__",
]
