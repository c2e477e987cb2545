"""The public surface is explicit: pin it, and check every name is really there."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import playment_datasets as pds

PUBLIC = {
    # one-call functions
    "pull", "load", "normalize_result", "to_pixels", "validate_id", "fetch_media",
    # objects
    "PlaymentClient", "RetryPolicy", "Timeouts", "Limits", "FetchedResult", "BatchNormalizer",
    "Registry", "RemoteRegistry", "Dataset", "DatasetView", "RemoteDataset", "DatasetDiff",
    "CommitResult",
    # the exception tree
    "PlaymentDatasetsError", "ConfigurationError", "InvalidIdError", "APIError",
    "AuthenticationError", "PermissionDeniedError", "NotFoundError", "InvalidRequestError",
    "ServerError", "TransportError", "ResultFormatError", "PullError", "RegistryError",
    "DatasetNotFoundError", "CorruptDatasetError", "RegistryLockError",
    "DeadlineExceededError", "ResponseTooLargeError",
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


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    # Start-up is what a user of the CLI feels first: the package loads only its
    # exceptions until a name that needs pandas, pyarrow or urllib3 is used.
    code = ("import sys, playment_datasets as pds\n"
            "heavy = ('pandas', 'pyarrow', 'numpy', 'urllib3')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "reg = pds.Registry(sys.argv[1])\n"  # reading the index needs neither
            "print(sorted(m for m in heavy if m in sys.modules))\n"
            "reg.datasets()\n"  # a DataFrame: now pandas
            "print('pandas' in sys.modules)\n")
    with tempfile.TemporaryDirectory() as root:
        done = subprocess.run([sys.executable, "-c", code, root], capture_output=True,
                              text=True, timeout=120, check=True)
    assert done.stdout.split("\n")[:3] == ["[]", "[]", "True"], done.stdout


def test_dir_lists_the_lazy_names() -> None:
    assert set(pds.__all__) <= set(dir(pds))


def test_pull_is_the_function_whatever_was_imported_before() -> None:
    # The pull stage (a subpackage) and the pull() function share a name.
    for first in ("import playment_datasets.pull.orchestrate",
                  "from playment_datasets.pull import progress",
                  "import playment_datasets"):
        code = f"{first}\nimport playment_datasets as pds\nprint(callable(pds.pull))"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120, check=True)
        assert done.stdout.strip() == "True", (first, done.stdout, done.stderr)
    from playment_datasets import pull
    assert callable(pull)
