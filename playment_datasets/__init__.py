"""playment_datasets: Playment annotation batches as versioned pandas/Parquet datasets.

Example:
    >>> import playment_datasets as pds
    >>> ds = pds.pull("PROJECT_ID", "BATCH_ID")   # doctest: +SKIP
    >>> ds.annotations.query("type == 'rectangle'")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playment_datasets._public import lazy_names
from playment_datasets._version import __version__
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

if TYPE_CHECKING:  # the names below are imported on first use (see __getattr__)
    from playment_datasets.api.client import (
        FetchedResult,
        Limits,
        PlaymentClient,
        RetryPolicy,
        Timeouts,
    )
    from playment_datasets.api.ids import validate_id
    from playment_datasets.dataset.dataset import Dataset, DatasetView
    from playment_datasets.dataset.diff import DatasetDiff
    from playment_datasets.normalize import BatchNormalizer, normalize_result, to_pixels
    from playment_datasets.pull.media import fetch_media
    from playment_datasets.pull.orchestrate import pull
    from playment_datasets.registry.registry import CommitResult, Registry, load
    from playment_datasets.registry.remote import RemoteDataset, RemoteRegistry
    from playment_datasets.schema import SCHEMA_VERSION, TABLE_NAMES

#: Where each lazily imported public name lives. Importing the package loads only the
#: exceptions: pandas, pyarrow and urllib3 are imported when a name that needs them is
#: first used, so ``playment-datasets --help`` and light commands start fast.
_LAZY = {
    **dict.fromkeys(["FetchedResult", "Limits", "PlaymentClient", "RetryPolicy", "Timeouts"],
                    "playment_datasets.api.client"),
    "validate_id": "playment_datasets.api.ids",
    **dict.fromkeys(["Dataset", "DatasetView"], "playment_datasets.dataset.dataset"),
    "DatasetDiff": "playment_datasets.dataset.diff",
    **dict.fromkeys(["BatchNormalizer", "normalize_result", "to_pixels"],
                    "playment_datasets.normalize"),
    "pull": "playment_datasets.pull.orchestrate",
    "fetch_media": "playment_datasets.pull.media",
    **dict.fromkeys(["CommitResult", "Registry", "load"], "playment_datasets.registry.registry"),
    **dict.fromkeys(["RemoteDataset", "RemoteRegistry"], "playment_datasets.registry.remote"),
    **dict.fromkeys(["SCHEMA_VERSION", "TABLE_NAMES"], "playment_datasets.schema"),
}


# The ``pull`` function shares its name with the ``pull`` stage (subpackage). Importing
# a submodule sets it as an attribute of its parent, once, when it is first imported:
# import the (light) subpackage now and drop that attribute, so that ``pds.pull`` is
# always the function, whatever is imported later.
_importlib = __import__("importlib")
_importlib.import_module("playment_datasets.pull")
del globals()["pull"], _importlib


__getattr__, __dir__ = lazy_names(__name__, _LAZY)


__all__ = [
    "APIError",
    "BatchNormalizer",
    "CommitResult",
    "Dataset",
    "DatasetView",
    "DatasetDiff",
    "FetchedResult",
    "Limits",
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
