"""Servers for the network tests, written on plain sockets so they can misbehave freely:
a small Playment API whose storage host streams, trickles or inflates bodies on demand,
a logging HTTP proxy (CONNECT and absolute-form forwarding) and a private TLS CA."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

API_KEY = "network-test-key-0123456789"
SIGNATURE = "sig-5ecret-f00d"
PROJECT, BATCH = "proj1", "batch1"
RESULT = json.dumps({"data": {"annotations": {"rectangles": [{
    "_id": "r1", "label": "car",
    "coordinates": [{"x": 0.1, "y": 0.1}, {"x": 0.2, "y": 0.1}, {"x": 0.2, "y": 0.2},
                    {"x": 0.1, "y": 0.2}]}]}}}).encode()

#: A storage behaviour: writes a whole raw HTTP answer to the socket.
Send = Callable[[socket.socket], None]


@dataclass
class Request:
    host: str
    method: str
    target: str
    headers: dict[str, str]


class RawServer:
    """A threaded HTTP/1.1 server on loopback; ``route(request) -> Send`` answers."""

    def __init__(self, route: Callable[[Request], Send], host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None) -> None:
        self.route = route
        self.tls = tls
        self.requests: list[Request] = []
        self.handshakes = 0
        self._sock = socket.create_server((host, 0))
        self.host, self.port = host, self._sock.getsockname()[1]
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        self._closed = False
        self._conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._sock.close()
        for conn in list(self._conns):
            try:
                conn.close()
            except OSError:
                pass

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                self.handshakes += 1
                conn = self.tls.wrap_socket(conn, server_side=True)
                self._conns.append(conn)
            reader = conn.makefile("rb")
            while True:
                line = reader.readline()
                if not line.strip():
                    return
                method, target, _ = line.decode().split(" ", 2)
                headers = {}
                while (h := reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                request = Request(self.host, method, target, headers)
                self.requests.append(request)
                self.route(request)(conn)
                if headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


def answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Send:
    def send(sock: socket.socket) -> None:
        head = {"Content-Length": str(len(body)), **(headers or {})}
        lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in head.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    return send


def envelope(data: dict[str, Any]) -> Send:
    return answer(200, json.dumps({"success": True, "data": data}).encode(),
                  {"Content-Type": "application/json"})


def trickle(head: bytes, body: bytes, every: float = 1.0) -> Send:
    """Send ``head`` at once, then ``body`` one byte per ``every`` seconds."""
    def send(sock: socket.socket) -> None:
        sock.sendall(head)
        for i in range(len(body)):
            sock.sendall(body[i:i + 1])
            time.sleep(every)
    return send


def stream(head: bytes, chunks: Iterator[bytes]) -> Send:
    def send(sock: socket.socket) -> None:
        sock.sendall(head)
        for chunk in chunks:
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
    return send


def stuck(sock: socket.socket) -> None:
    """Headers, then silence for a minute (a storage download that never ends)."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
    time.sleep(60)


def gzip_bomb(decoded: int) -> bytes:
    """``decoded`` zero bytes gzip-compressed, made a MiB at a time (never allocated whole)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    parts = [packer.compress(zeros) for _ in range(decoded // len(zeros))]
    return b"".join(parts) + packer.flush()


@dataclass
class FakeApi:
    """The Playment API on 127.0.0.1 and its storage on 127.0.0.2.

    ``storage[job_id]`` (default: the normal result) answers a signed download;
    ``attachment`` may replace the attachment answer; ``listing`` the listing page.
    """

    jobs: list[str]
    tls: ssl.SSLContext | None = None
    storage: dict[str, Send] = field(default_factory=dict)
    attachment: Callable[[str, str], Send] | None = None
    listing: Callable[[str], Send] | None = None

    def __post_init__(self) -> None:
        self.store = RawServer(self._storage, "127.0.0.2", self.tls)
        self.api = RawServer(self._api, "127.0.0.1", self.tls)
        self.base_url = self.api.url

    def close(self) -> None:
        self.api.close()
        self.store.close()

    def result_url(self, job_id: str) -> str:
        return f"{self.store.url}/results/{job_id}.json"

    def _api(self, request: Request) -> Send:
        parts = urlsplit(request.target)
        query = parse_qs(parts.query)
        if request.headers.get("x-api-key") != API_KEY:
            return answer(401, b"no key")
        if parts.path == f"/v1/projects/{PROJECT}/batch/{BATCH}":
            token = query.get("page_token", [""])[0]
            if self.listing is not None:
                return self.listing(token)
            return envelope({"jobs": [{"id": j, "status": "completed"} for j in self.jobs]})
        if parts.path.startswith(f"/v1/projects/{PROJECT}/jobs/"):
            job_id = parts.path.rsplit("/", 1)[1]
            return envelope({"job_id": job_id, "status": "completed",
                             "result": self.result_url(job_id)})
        if parts.path == "/v1/attachments":
            url = query["url"][0]
            job_id = urlsplit(url).path.rsplit("/", 1)[1].removesuffix(".json")
            if self.attachment is not None:
                return self.attachment(job_id, url)
            return answer(302, b"", {"Location": f"{url}?X-Amz-Signature={SIGNATURE}"})
        return answer(404, b"{}")

    def _storage(self, request: Request) -> Send:
        job_id = urlsplit(request.target).path.rsplit("/", 1)[1].removesuffix(".json")
        return self.storage.get(job_id) or answer(200, RESULT, {"ETag": f'"{job_id}"'})

    def storage_requests(self, job_id: str) -> int:
        return sum(job_id in r.target for r in self.store.requests)


@pytest.fixture
def fake_api() -> Iterator[Callable[..., FakeApi]]:
    made: list[FakeApi] = []

    def make(jobs: list[str], **kwargs: Any) -> FakeApi:
        made.append(FakeApi(jobs, **kwargs))
        return made[-1]

    yield make
    for api in made:
        api.close()


# -- a logging proxy -----------------------------------------------------------------

class Proxy:
    """An HTTP proxy: CONNECT tunnels and absolute-form forwarding; logs every request
    line with its headers in ``seen``."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while line := reader.readline():
                method, target, version = line.decode().split(" ", 2)
                raw_headers = []
                headers = {}
                while (h := reader.readline()) not in (b"\r\n", b"\n", b""):
                    raw_headers.append(h)
                    name, _, value = h.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                self.seen.append(Request("proxy", method, target, headers))
                if method == "CONNECT":
                    host, _, port = target.rpartition(":")
                    upstream = socket.create_connection((host, int(port)))
                    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    _pipe(conn, upstream)
                    return
                parts = urlsplit(target)
                upstream = socket.create_connection((parts.hostname, parts.port or 80))
                path = parts.path + (f"?{parts.query}" if parts.query else "")
                kept = [h for h in raw_headers if not h.lower().startswith(b"proxy-")]
                upstream.sendall(f"{method} {path} {version}".encode() + b"".join(kept)
                                 + b"Connection: close\r\n\r\n")
                conn.sendall(_read_all(upstream))
                upstream.close()
                return  # one request per connection: the client reconnects
        except (OSError, ValueError):
            pass
        finally:
            conn.close()


def _read_all(sock: socket.socket) -> bytes:
    parts = []
    while data := sock.recv(65536):
        parts.append(data)
    return b"".join(parts)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
    threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
    pump(client, upstream)


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy()
    yield p
    p.close()


# -- a private certificate authority -------------------------------------------------

@dataclass
class PrivateCA:
    ca_pem: Path
    server: ssl.SSLContext


def make_private_ca(root: Path, *, server_purpose: str = "serverAuth") -> PrivateCA:
    """A CA of its own in ``root`` and a server context with a certificate it issued for
    localhost, 127.0.0.1 and 127.0.0.2; ``server_purpose`` "clientAuth" gives that
    certificate the wrong extended key usage."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    root.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "network-tests CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          # key identifiers: Python 3.13 verifies strictly (VERIFY_X509_STRICT) and
          # refuses a chain without them, as it would a company CA's
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.IPAddress(ipaddress.ip_address("127.0.0.2"))]
    purpose = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH,
               "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}[server_purpose]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_pem = root / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (root / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (root / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(root / "server.pem", root / "server.key")
    return PrivateCA(ca_pem, server)


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCA:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


# -- a pull in a child process, measured -----------------------------------------------

CHILD = """
import json, resource, sys, time
import playment_datasets as pds

def peak_rss():
    # VmHWM is this process's own high-water mark. ru_maxrss is not: Linux carries the
    # parent's resident size at fork across exec, so a large test runner would count.
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

a = json.loads(sys.argv[1])
started = time.monotonic()
ds = pds.pull(a["project"], a["batch"], api_key=a["key"], base_url=a["base_url"],
              registry=a["registry"], workers=a.get("workers", 4), progress=False,
              timeout=pds.Timeouts(total=a.get("total", 120.0)))
errors = ds.errors[["job_id", "error_type", "message"]].to_dict("records")
print(json.dumps({"seconds": time.monotonic() - started, "errors": errors,
                  "jobs": len(ds.jobs),
                  "peak_rss": peak_rss()}))
"""


def pull_in_child(base_url: str, registry: Path, **options: Any) -> dict[str, Any]:
    """Run a pull in a fresh interpreter; its wall time, errors and peak RSS."""
    args = {"project": PROJECT, "batch": BATCH, "key": API_KEY, "base_url": base_url,
            "registry": str(registry), **options}
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True,
                          text=True, timeout=120, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n  pull: {report['seconds']:.2f} s, peak RSS {report['peak_rss'] / 2**20:.0f} MiB")  # noqa: T201 (figures for -s)
    return report
