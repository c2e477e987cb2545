"""The head of an HTTP response (status line and header fields), read with less work.

:class:`http.client.HTTPResponse` hands every header block to the ``email`` package's
feed parser, a general MIME parser written in Python: about a third of a millisecond per
response, the largest single cost of a request after the network. :class:`Response` reads
the head the same way, through the same private helpers of :mod:`http.client` for the
status line and the header lines (so with the same line and count limits), and builds
the :class:`http.client.HTTPMessage` itself when every header line is plain:

- ``name: value`` with an RFC 9110 token as name, on one line ending in LF or CRLF,
  with no other CR or LF in it;
- no ``Content-Type`` that names a ``multipart`` or ``message`` type (the feed parser
  reads those as the start of a MIME body).

Any other block (a folded line, a line without a colon, a name with a space or
non-ASCII bytes…) goes to :func:`http.client.parse_headers`'s own parser, so the message
is the standard one in every case; ``tests/network/test_head.py`` checks both paths
against :mod:`http.client` on generated heads. Two differences are deliberate: more
than :data:`MAX_INTERIM` ``100 Continue`` answers are refused (a server sending them
without end would otherwise keep the request busy until its total deadline), and on a
Python whose ``begin()`` takes parameters (a header limit, as in releases after 3.14)
the standard reading is used whole.

Example:
    >>> import io
    >>> head = b"Content-Type: application/json\\r\\nETag: \\"x\\"\\r\\n\\r\\n"
    >>> message = read_header_block(io.BytesIO(head))
    >>> message["etag"], message.get_content_type()
    ('"x"', 'application/json')
"""

from __future__ import annotations

import email.parser
import http.client
import inspect
import re
from typing import IO, Any

__all__ = ["MAX_INTERIM", "SUPPORTED", "Response", "plain_fields", "read_header_block"]


def _supported() -> bool:
    """Whether this Python's http.client reads a head as :class:`Response` mirrors:
    ``begin()`` without parameters and ``_read_headers(fp)`` (3.10 to 3.14). On a later
    one (``begin`` taking a header limit), :meth:`Response.begin` is the standard one."""
    try:
        begin = inspect.signature(http.client.HTTPResponse.begin)
        read = inspect.signature(http.client._read_headers)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return False
    return list(begin.parameters) == ["self"] and list(read.parameters) == ["fp"]


#: Whether :class:`Response` reads heads itself on this Python (else it is the standard one).
SUPPORTED = _supported()
#: ``100 Continue`` answers skipped before the final one at most; a server that sends
#: more is refused at once rather than read until the request's deadline.
MAX_INTERIM = 100

#: A field name as RFC 9110 defines it: one or more token characters.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: What makes the feed parser read past the header block (then it is left to parse).
_MIME_BODY = re.compile(rb"multipart|message", re.IGNORECASE)


def plain_fields(lines: list[bytes]) -> list[tuple[str, str]] | None:
    """The ``(name, value)`` pairs of header ``lines`` (the last one the blank line that
    ends them), as the feed parser gives them; ``None`` unless every line is plain.

    Example:
        >>> plain_fields([b"A: 1 \\r\\n", b"b:\\t2\\n", b"\\r\\n"])
        [('A', '1 '), ('b', '2')]
        >>> plain_fields([b"A: 1\\r\\n", b" folded\\r\\n", b"\\r\\n"]) is None
        True
    """
    fields = []
    for line in lines[:-1]:
        text = line[:-2] if line.endswith(b"\r\n") else line[:-1]
        colon = text.find(b":")
        if (colon < 1 or not line.endswith(b"\n") or b"\r" in text or b"\n" in text
                or not _TOKEN.fullmatch(text, 0, colon)):
            return None
        name, value = text[:colon], text[colon + 1:].lstrip(b" \t")
        if name.lower() == b"content-type" and _MIME_BODY.search(value):
            return None
        fields.append((name.decode("ascii"), value.decode("iso-8859-1")))
    return fields


def read_header_block(fp: IO[bytes]) -> http.client.HTTPMessage:
    """Read header lines from ``fp`` up to the blank line; the message
    :func:`http.client.parse_headers` would give for them."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]
    fields = plain_fields(lines) if lines and lines[-1] in (b"\r\n", b"\n") else None
    if fields is None:
        text = b"".join(lines).decode("iso-8859-1")
        return email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
    message = http.client.HTTPMessage()
    for name, value in fields:
        message.set_raw(name, value)  # as the feed parser stores each field
    message.set_payload("")  # what the feed parser leaves after the block: nothing
    return message


class Response(http.client.HTTPResponse):
    """:class:`http.client.HTTPResponse` whose head is read by :func:`read_header_block`.

    ``begin`` sets what the standard one sets, from the same status line and headers:
    ``status``, ``reason``, ``version``, ``headers``, ``chunked``, ``will_close`` and
    ``length`` (and prints the same lines at a ``debuglevel`` above 0). It refuses more
    than :data:`MAX_INTERIM` interim answers; on a Python whose http.client it does not
    mirror (:data:`SUPPORTED` false) it is the standard one.
    """

    def begin(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs or not SUPPORTED:  # an http.client this class does not mirror
            super().begin(*args, **kwargs)
            return
        if self.headers is not None:
            return  # begun already
        interim = 0
        while True:
            version, status, reason = self._read_status()  # type: ignore[attr-defined]
            if status != http.client.CONTINUE:
                break
            interim += 1
            if interim > MAX_INTERIM:
                raise http.client.HTTPException(
                    f"got more than {MAX_INTERIM} interim responses (100 Continue)")
            skipped = http.client._read_headers(self.fp)  # type: ignore[attr-defined]
            if self.debuglevel > 0:
                print("headers:", skipped)  # noqa: T201 - http.client's debug output
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        self.headers = self.msg = read_header_block(self.fp)
        if self.debuglevel > 0:
            for name, value in self.headers.items():
                print("header:", name + ":", value)  # noqa: T201 - as http.client does
        encoding = self.headers.get("transfer-encoding")
        self.chunked = bool(encoding) and encoding.lower() == "chunked"
        if self.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = None
        length = self.headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                pass
            else:
                if self.length < 0:
                    self.length = None
        if (status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
                or 100 <= status < 200 or self._method == "HEAD"):  # type: ignore[attr-defined]
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
