"""Stage 1, the Playment API: the HTTP client (transport, retries, timeouts) and id checks.

Owns everything that talks to the Playment API. May import only the foundation
(``errors``, ``schema``, ``_optional``, ``_version``) and its own modules — not the
peer stages ``normalize`` or ``emulator``, nor anything above.
"""
