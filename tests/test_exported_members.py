"""The public surface is explicit: pin it, and check every name is really there."""

from __future__ import annotations

import playment_datasets as pds

PUBLIC = {
    # one-call functions
    "pull", "load", "normalize_result", "to_pixels", "validate_id", "fetch_media",
    # objects
    "PlaymentClient", "RetryPolicy", "Timeouts", "FetchedResult", "BatchNormalizer",
    "Registry", "RemoteRegistry", "Dataset", "DatasetView", "RemoteDataset", "DatasetDiff",
    "CommitResult",
    # the exception tree
    "PlaymentDatasetsError", "ConfigurationError", "InvalidIdError", "APIError",
    "AuthenticationError", "PermissionDeniedError", "NotFoundError", "InvalidRequestError",
    "ServerError", "TransportError", "ResultFormatError", "PullError", "RegistryError",
    "DatasetNotFoundError", "CorruptDatasetError", "RegistryLockError",
    # constants
    "SCHEMA_VERSION", "TABLE_NAMES", "__version__",
}


def test_all_is_pinned() -> None:
    assert set(pds.__all__) == PUBLIC
    assert len(pds.__all__) == len(set(pds.__all__))


def test_every_exported_name_exists() -> None:
    for name in pds.__all__:
        assert getattr(pds, name) is not None, name


def test_every_error_derives_from_the_one_base() -> None:
    errors = [getattr(pds, n) for n in pds.__all__ if n.endswith("Error")]
    assert all(issubclass(e, pds.PlaymentDatasetsError) for e in errors)
