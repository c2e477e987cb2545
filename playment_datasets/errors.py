"""The one exception tree of playment_datasets.

Every error the library raises on purpose derives from :class:`PlaymentDatasetsError`,
so ``except pds.PlaymentDatasetsError`` catches them all::

    PlaymentDatasetsError
    ├── ConfigurationError        missing API key, bad base URL, bad option value
    ├── InvalidIdError            an id that cannot safely become part of a path or URL
    ├── APIError                  the Playment API answered with an error
    │   ├── AuthenticationError   auth-failure, core.webutil.token_auth, HTTP 401
    │   ├── PermissionDeniedError unauthorized, core.webutil.auther
    │   ├── NotFoundError         FS_0006, resource_error, unknown project/batch/job
    │   ├── InvalidRequestError   GE_0001, GE_0002, invalid_request_error, other 4xx
    │   └── ServerError           FS_0000, FS_0008, api_error, 5xx after all retries
    ├── TransportError            connection failures, timeouts, truncated bodies
    │   │                         after all retries; unsafe redirects; TLS and DNS
    │   │                         failures (not retried)
    │   ├── DeadlineExceededError a request did not finish within Timeouts.total
    │   └── ResponseTooLargeError a body larger than the Limits allow (not retried)
    ├── ResultFormatError         a result file that cannot be normalized (strict mode)
    ├── PullError                 a pull that could not finish (says how to resume)
    └── RegistryError             the local registry
        ├── DatasetNotFoundError  unknown batch, version or tag
        ├── CorruptDatasetError   a file whose hash no longer matches its manifest
        └── RegistryLockError     the registry lock could not be taken in time

Messages say what was expected, what was got, and what to do. No message, ``repr`` or
attribute of these exceptions ever holds the API key.
"""

from __future__ import annotations

__all__ = [
    "APIError",
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
    "ServerError",
    "TransportError",
]


class PlaymentDatasetsError(Exception):
    """Base class of every error raised by playment_datasets."""


class ConfigurationError(PlaymentDatasetsError, ValueError):
    """A setting is missing or has an impossible value (for example no API key)."""


class InvalidIdError(PlaymentDatasetsError, ValueError):
    """An id from the API or the user is unsafe to use in a path or URL."""


class APIError(PlaymentDatasetsError):
    """The Playment API answered with an error envelope or an error status.

    Attributes:
        code: the Playment error code (``"auth-failure"``, ``"GE_0001"``, …) or
            ``None`` when the body carried none.
        status_code: the HTTP status of the response.
        url: the request URL without its query string.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code
        self.url = url


class AuthenticationError(APIError):
    """The API key is missing or wrong."""


class PermissionDeniedError(APIError):
    """The API key is valid but has no access to that project or resource."""


class NotFoundError(APIError):
    """The project, batch, job or attachment does not exist."""


class InvalidRequestError(APIError):
    """A parameter was refused (malformed id, bad page token, other 4xx)."""


class ServerError(APIError):
    """The server failed (5xx or a server-side error code) on every attempt."""


class TransportError(PlaymentDatasetsError):
    """The network failed on every attempt, or a response was unusable or unsafe."""


class DeadlineExceededError(TransportError):
    """A request (connect, headers and body, retries included) ran past ``Timeouts.total``."""


class ResponseTooLargeError(TransportError):
    """A response body passed ``Limits.max_bytes`` or ``Limits.max_decoded_bytes``.

    It is not retried: the same server would send the same body again.
    """


class ResultFormatError(PlaymentDatasetsError, ValueError):
    """A result file does not have the shape of any Playment result format.

    Attributes:
        job_id: the job the result belongs to, when known.
        path: a JSON path such as ``$.data.annotations.rectangles[3].coordinates``.
    """

    def __init__(self, message: str, *, job_id: str | None = None, path: str = "$") -> None:
        super().__init__(message)
        self.job_id = job_id
        self.path = path


class PullError(PlaymentDatasetsError):
    """A pull stopped before it could commit a version; rerunning it resumes."""


class RegistryError(PlaymentDatasetsError):
    """The local dataset registry refused an operation."""


class DatasetNotFoundError(RegistryError, KeyError):
    """No dataset, version or tag of that name exists in the registry."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CorruptDatasetError(RegistryError):
    """A stored file no longer matches the hash recorded in its manifest."""


class RegistryLockError(RegistryError):
    """Another process held the registry lock for longer than the timeout."""
