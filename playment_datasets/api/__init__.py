"""Stage 1, the Playment API: the HTTP client and its plumbing, and id checks.

``client`` holds PlaymentClient (requests, retries, errors); ``transport`` the
deadlines, size limits and connection pools under it; ``environment`` the proxy and
CA-bundle conventions read from the environment; ``ids`` the id checks.

Owns everything that talks to the Playment API. May import only the foundation
(``errors``, ``schema``, ``_optional``, ``_version``) and its own modules — not the
peer stages ``normalize`` or ``emulator``, nor anything above.
"""
