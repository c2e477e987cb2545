"""Response heads read by api/head.py exactly as http.client reads them.

Every case begins the same bytes with ``http.client.HTTPResponse`` and with
``head.Response`` and compares everything a caller can see: status, reason, version,
the header message (fields, defects, payload), the framing (chunked, length, whether
the connection closes), the bytes left for the body, or the exception raised.
"""

from __future__ import annotations

import http.client
import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from playment_datasets.api import head, transport
from playment_datasets.api.head import MAX_INTERIM, Response, plain_fields


class _Socket:
    """What HTTPResponse needs of a socket: a file to read the answer from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        assert mode == "rb"
        return io.BytesIO(self.data)


def _message(message: Any) -> Any:
    """A message's state, compared by value (parts and defects are objects)."""
    if isinstance(message, list):
        return [_message(part) for part in message]
    if not hasattr(message, "defects"):
        return message
    state = {k: v for k, v in vars(message).items() if k not in ("defects", "_payload")}
    return {**state, "payload": _message(message._payload),
            "defects": [type(d).__name__ for d in message.defects]}


def _seen(cls: type[http.client.HTTPResponse], data: bytes, method: str = "GET",
          debuglevel: int = 0) -> Any:
    response = cls(_Socket(data), debuglevel, method=method)  # type: ignore[arg-type]
    try:
        response.begin()
    except Exception as exc:  # noqa: BLE001 - the same error is part of the behaviour
        return ("raised", type(exc).__name__, exc.args)
    return {
        "status": response.status, "reason": response.reason, "version": response.version,
        "message": _message(response.headers),
        "chunked": response.chunked, "chunk_left": response.chunk_left,
        "will_close": response.will_close, "length": response.length,
        "left": response.fp.read(),
        # what urllib3 and the client read of the message
        "items": response.headers.items(), "content_type": response.headers.get_content_type(),
    }


def _same(data: bytes, method: str = "GET") -> Any:
    standard = _seen(http.client.HTTPResponse, data, method)
    assert _seen(Response, data, method) == standard
    return standard


PLAIN = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n"
         b"ETag: \"9f2c\"\r\nDate: Sun, 06 Dec 2026 21:00:00 GMT\r\n\r\nbody")


def test_a_plain_head_is_read_without_the_email_parser_and_as_http_client_reads_it() -> None:
    lines = PLAIN.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]
    assert plain_fields([line + b"\r\n" for line in lines] + [b"\r\n"]) is not None
    got = _same(PLAIN)
    assert got["message"]["_headers"][2] == ("ETag", '"9f2c"')
    assert (got["length"], got["will_close"], got["left"]) == (4, False, b"body")


@pytest.mark.parametrize("head", [
    b"ETag: \"abc\r\n def\"\r\n",  # folded
    b"X-Odd : spaced\r\n",  # a space in the name
    b"no colon here\r\n",
    b": empty name\r\n",
    b"From someone\r\n",
    b"X-Bare: a\rb\r\n",  # a lone CR splits the line for the email parser
    b"X-Latin: caf\xe9\r\n",
    b"X-N\xe4me: v\r\n",
    b"Content-Type: multipart/mixed; boundary=x\r\n",
    b"content-type: message/rfc822\r\n",
    b"X-LF-only: v\n",
    b"X-Trailing: v \t\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 9\r\n",
    b"Content-Length: -3\r\n",
    b"Content-Length: twelve\r\n",
    b"Connection: close\r\nContent-Length: 1\r\n",
    b"Keep-Alive: timeout=5\r\n",
])
def test_odd_heads_are_read_as_http_client_reads_them(head: bytes) -> None:
    _same(b"HTTP/1.1 200 OK\r\n" + head + b"\r\nrest")
    _same(b"HTTP/1.0 200 OK\r\n" + head + b"\r\nrest")


@pytest.mark.parametrize("data", [
    b"HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 304 Not Modified\r\nETag: \"e\"\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/2 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: 1\r\n",  # the connection ends inside the head
    b"",
    b"garbage\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"v" * 70000 + b"\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Many: 1\r\n" * 120 + b"\r\n",
])
def test_status_lines_and_limits_are_handled_as_http_client_handles_them(data: bytes) -> None:
    _same(data)


def test_a_head_answer_has_no_body() -> None:
    assert _same(PLAIN, method="HEAD")["length"] == 0


def test_debug_output_is_http_clients(capsys: pytest.CaptureFixture[str]) -> None:
    data = b"HTTP/1.1 100 Continue\r\nX-A: 1\r\n\r\n" + PLAIN
    _seen(http.client.HTTPResponse, data, debuglevel=1)
    standard = capsys.readouterr().out
    _seen(Response, data, debuglevel=1)
    assert capsys.readouterr().out == standard
    assert "header: ETag:" in standard


def test_a_server_that_sends_interim_answers_for_ever_is_refused() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\n"
    assert _seen(Response, interim * MAX_INTERIM + PLAIN)["status"] == 200
    assert _seen(Response, interim * (MAX_INTERIM + 1) + PLAIN) == (
        "raised", "HTTPException", (f"got more than {MAX_INTERIM} interim responses "
                                    "(100 Continue)",))


def test_an_http_client_it_does_not_mirror_reads_heads_its_own_way(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(fp: Any) -> None:
        raise AssertionError("the quick reader was used")

    monkeypatch.setattr(head, "read_header_block", refuse)
    monkeypatch.setattr(head, "SUPPORTED", False)
    _same(PLAIN)
    monkeypatch.setattr(head, "SUPPORTED", True)
    given: list[Any] = []
    monkeypatch.setattr(http.client.HTTPResponse, "begin",
                        lambda self, *args, **kwargs: given.append((args, kwargs)))
    Response(_Socket(PLAIN), method="GET").begin(_max_headers=10)  # type: ignore[arg-type]
    assert given == [((), {"_max_headers": 10})]  # a later http.client's parameters


def test_this_python_is_mirrored() -> None:
    assert head.SUPPORTED  # 3.10 to 3.14: otherwise the tests above prove little


def test_the_client_connections_use_the_quick_head() -> None:
    assert transport._WatchedHTTPConnection.response_class is Response
    assert transport._WatchedHTTPSConnection.response_class is Response


_NAMES = st.sampled_from([b"Content-Type", b"content-length", b"Transfer-Encoding",
                          b"Connection", b"ETag", b"Location", b"X-A", b"Proxy-Connection",
                          b"Keep-Alive", b"From", b"", b"X B", b"X\xe9", b"A:B"])
_VALUES = st.sampled_from([b"application/json", b"multipart/form-data; boundary=b",
                           b"Message/Partial", b"chunked", b"CHUNKED", b"gzip, chunked",
                           b"close", b"keep-alive", b"12", b"-1", b"1e3", b"", b" \t",
                           b"caf\xe9", b"a\x0bb\x0cc\x1cd\x85"])
_ENDS = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b" \r\n", b"\r\r\n"])
_LINE = st.one_of(
    st.tuples(_NAMES, st.sampled_from([b":", b": ", b":\t", b" : "]), _VALUES, _ENDS
              ).map(b"".join),
    st.builds(lambda n, v, e: n + b": " + v + e, _NAMES,
              st.binary(max_size=12), _ENDS),
    st.sampled_from([b" continued\r\n", b"\tcontinued\r\n", b"From x y\r\n", b"noval\r\n"]),
)
_STATUS = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 404 Nope ",
                           b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 302 Found",
                           b"HTTP/1.1 101 Switching", b"HTTP/0.9 200 OK"])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(status=_STATUS, lines=st.lists(_LINE, max_size=8), end=st.sampled_from(
    [b"\r\n", b"\n", b""]), method=st.sampled_from(["GET", "HEAD"]))
def test_any_generated_head_is_read_as_http_client_reads_it(
        status: bytes, lines: list[bytes], end: bytes, method: str) -> None:
    _same(status + b"\r\n" + b"".join(lines) + end + b"body", method)
