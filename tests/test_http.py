"""The outbox's HTTP client (bot/outgoing/http.py), against real servers on local sockets: its
requests share kept-alive connections; one idle too long, or dropped by the server, is not
used again; what never left is Unreached and what may have arrived is Unanswered; close()
closes the sockets. (The SMS webhook's own: tests/test_sms.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakes.sms_vendors import FakeServer, closed_port
from tornado.web import RequestHandler

from bot.outgoing import http as http_module
from bot.outgoing.http import Http, Unanswered, Unreached


class Echo(FakeServer):
    """Echoes a POST's JSON; `streams` holds each request's connection, to see which were
    closed. A GET is answered only after any client here has given up."""

    def __init__(self, idle_timeout: float | None = None):
        super().__init__()
        self.streams: list = []
        if idle_timeout is not None:
            self.server_options = {"idle_connection_timeout": idle_timeout}

    def handler(self) -> type[RequestHandler]:
        return _Echo


class _Echo(RequestHandler):
    def initialize(self, fake: Echo) -> None:
        self.fake = fake

    def post(self) -> None:
        stream = self.request.connection.stream
        self.fake.peers.append(stream.socket.getpeername()[1])
        self.fake.streams.append(stream)
        self.write({"got": json.loads(self.request.body or b"null")})

    async def get(self) -> None:
        await asyncio.sleep(3)
        self.write("late")


@pytest.fixture
def server():
    with Echo() as running:
        yield running


def post(http: Http, url: str, n: int = 1) -> list[dict]:
    async def main() -> list[dict]:
        answers = []
        for i in range(n):
            answer = await http.request("POST", url, json.dumps({"i": i}).encode())
            assert answer.status == 200
            answers.append(json.loads(answer.body))
        return answers

    return asyncio.run(main())


def test_requests_one_after_another_share_one_connection(server):
    http = Http(connect_timeout=2, timeout=5)
    assert post(http, server.url, 20) == [{"got": {"i": i}} for i in range(20)]
    assert len(server.peers) == 20 and len(set(server.peers)) == 1


def test_a_connection_idle_past_keepalive_is_closed_and_not_used_again(server, monkeypatch):
    monkeypatch.setattr(http_module, "KEEPALIVE", 0.2)
    http = Http(connect_timeout=2, timeout=5)

    async def main() -> None:
        await http.request("POST", server.url, b"1")
        await asyncio.sleep(1.5)  # aiohttp looks for idle connections about once a second
        await http.request("POST", server.url, b"2")

    asyncio.run(main())
    first, second = server.streams
    assert server.peers[0] != server.peers[1]
    assert first.closed(), "the idle connection was closed by us, not left open"


def test_a_connection_the_server_dropped_is_not_reused():
    http = Http(connect_timeout=2, timeout=5)
    with Echo(idle_timeout=0.2) as server:

        async def main() -> list[int]:
            statuses = [(await http.request("POST", server.url, b"1")).status]
            await asyncio.sleep(0.6)  # the server closed its side meanwhile
            statuses.append((await http.request("POST", server.url, b"2")).status)
            return statuses

        assert asyncio.run(main()) == [200, 200]
    assert server.peers[0] != server.peers[1]


def test_nobody_listening_and_no_such_host_are_unreached():
    http = Http(connect_timeout=2, timeout=5)
    for url in (f"http://127.0.0.1:{closed_port()}/x", "http://no-such-host.invalid/x"):
        with pytest.raises(Unreached):
            post(http, url)


def test_a_server_whose_certificate_nobody_vouches_for_is_unreached(tmp_path):
    """TLS is checked as before (Python's own, the system's certificates): a self-signed
    server gets nothing from us, and nothing was sent."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )  # fmt: skip
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def serve_once() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                heard.append(tls.recv(65536))
        except (ssl.SSLError, OSError):
            pass  # the client refused the handshake

    threading.Thread(target=serve_once, daemon=True).start()
    try:
        with pytest.raises(Unreached, match="certificate"):
            post(
                Http(connect_timeout=2, timeout=5),
                f"https://127.0.0.1:{listener.getsockname()[1]}/x",
            )
    finally:
        listener.close()
    assert not heard, "no byte of the request reached the server"


def test_an_answer_that_never_comes_is_unanswered_after_the_timeout(server):
    http = Http(connect_timeout=2, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(Unanswered):
        asyncio.run(http.request("GET", server.url))
    assert time.monotonic() - started < 2


def test_a_server_that_hangs_up_after_reading_the_request_is_unanswered():
    listener = socket.create_server(("127.0.0.1", 0))

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)  # the request arrived: it may have been acted on
        conn.close()

    threading.Thread(target=hang_up, daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/x"
    try:
        with pytest.raises(Unanswered):
            post(Http(connect_timeout=2, timeout=5), url)
    finally:
        listener.close()


def test_close_closes_the_kept_connections_at_once(server):
    http = Http(connect_timeout=2, timeout=5)

    async def main() -> None:
        await http.request("POST", server.url, b"1")
        http.close()
        await asyncio.sleep(0.3)

    asyncio.run(main())
    (stream,) = server.streams
    assert stream.closed()
    assert post(http, server.url) == [{"got": {"i": 0}}], "the next request opens anew"
