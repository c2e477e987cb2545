"""playment_datasets: Playment annotation batches as versioned pandas/Parquet datasets.

Example:
    >>> import playment_datasets as pds
    >>> ds = pds.pull("PROJECT_ID", "BATCH_ID")   # doctest: +SKIP
    >>> ds.annotations.query("type == 'rectangle'")  # doctest: +SKIP
"""

from __future__ import annotations

from playment_datasets.errors import (
    APIError,
    AuthenticationError,
    ConfigurationError,
    CorruptDatasetError,
    DatasetNotFoundError,
    DeadlineExceededError,
    InvalidIdError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PlaymentDatasetsError,
    PullError,
    RegistryError,
    RegistryLockError,
    ResponseTooLargeError,
    ResultFormatError,
    ServerError,
    TransportError,
)
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES

__version__ = "0.1.0"

from playment_datasets.client import (  # noqa: E402
    FetchedResult,
    Limits,
    PlaymentClient,
    RetryPolicy,
    Timeouts,
)
from playment_datasets.dataset import Dataset, load  # noqa: E402
from playment_datasets.diff import DatasetDiff  # noqa: E402
from playment_datasets.ids import validate_id  # noqa: E402
from playment_datasets.normalize import BatchNormalizer, normalize_result, to_pixels  # noqa: E402
from playment_datasets.pull import pull  # noqa: E402
from playment_datasets.registry import CommitResult, Registry  # noqa: E402
from playment_datasets.remote import RemoteDataset, RemoteRegistry  # noqa: E402

__all__ = [
    "APIError",
    "BatchNormalizer",
    "CommitResult",
    "Dataset",
    "DatasetDiff",
    "FetchedResult",
    "Limits",
    "PlaymentClient",
    "Registry",
    "RemoteDataset",
    "RemoteRegistry",
    "RetryPolicy",
    "Timeouts",
    "load",
    "normalize_result",
    "pull",
    "to_pixels",
    "validate_id",
    "AuthenticationError",
    "ConfigurationError",
    "CorruptDatasetError",
    "DatasetNotFoundError",
    "DeadlineExceededError",
    "InvalidIdError",
    "InvalidRequestError",
    "NotFoundError",
    "PermissionDeniedError",
    "PlaymentDatasetsError",
    "PullError",
    "RegistryError",
    "RegistryLockError",
    "ResponseTooLargeError",
    "ResultFormatError",
    "SCHEMA_VERSION",
    "ServerError",
    "TABLE_NAMES",
    "TransportError",
    "__version__",
]
