"""Presigned storage URLs, S3 style: an HMAC over the object path and its lifetime.

The attachment endpoint hands out ``{storage}/{path}?X-Amz-…&X-Amz-Signature=…``; the
storage host checks the signature and the expiry before serving the object. The secret
is random per emulator, so a URL signed by one emulator is refused by another.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Literal
from urllib.parse import urlencode

__all__ = ["UrlSigner"]

_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_REGION = "ap-south-1"

Verdict = Literal["ok", "missing", "invalid", "expired"]


class UrlSigner:
    """Sign object paths and check signed queries.

    Example:
        >>> signer = UrlSigner(ttl=300.0)
        >>> query = signer.sign("/results/p/b/j.json", now=1_700_000_000.0)
        >>> from urllib.parse import parse_qs
        >>> params = {k: v[0] for k, v in parse_qs(query).items()}
        >>> signer.check("/results/p/b/j.json", params, now=1_700_000_010.0)
        'ok'
        >>> signer.check("/results/p/b/j.json", params, now=1_700_000_400.0)
        'expired'
        >>> signer.check("/results/p/b/other.json", params, now=1_700_000_010.0)
        'invalid'
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = float(ttl)
        self._secret = secrets.token_bytes(32)

    def sign(self, path: str, *, now: float | None = None) -> str:
        """The query string that makes ``path`` downloadable for ``ttl`` seconds."""
        issued = time.time() if now is None else now
        amz_date = time.strftime(_DATE_FORMAT, time.gmtime(issued))
        expires = _format_seconds(self.ttl)
        return urlencode({
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"EMULATOR/{amz_date[:8]}/{_REGION}/s3/aws4_request",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(path, amz_date, expires),
        })

    def check(self, path: str, params: Mapping[str, str], *, now: float | None = None) -> Verdict:
        """``"ok"``, or why the signed query does not grant access to ``path``."""
        amz_date = params.get("X-Amz-Date")
        expires = params.get("X-Amz-Expires")
        signature = params.get("X-Amz-Signature")
        if not (amz_date and expires and signature):
            return "missing"
        expected = self._signature(path, amz_date, expires)
        if not hmac.compare_digest(expected, signature):
            return "invalid"
        try:
            issued = calendar.timegm(time.strptime(amz_date, _DATE_FORMAT))
            lifetime = float(expires)
        except ValueError:
            return "invalid"
        current = time.time() if now is None else now
        return "expired" if current >= issued + lifetime else "ok"

    def expiry_of(self, params: Mapping[str, str]) -> str:
        """The ISO expiry time of a signed query (for S3-style error bodies)."""
        try:
            issued = calendar.timegm(time.strptime(params["X-Amz-Date"], _DATE_FORMAT))
            return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                 time.gmtime(issued + float(params["X-Amz-Expires"])))
        except (KeyError, ValueError):
            return ""

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        message = f"GET\n{path}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
