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
from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES

__version__ = "0.1.0"

__all__ = [
    "APIError",
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
