"""The outbox's HTTP client: WeChat's API and the SMS webhook over connections kept open.

Usage::

    http = Http(connect_timeout=5, timeout=10, most=10)
    answer = await http.request("POST", url, body=b"{...}", headers={"Content-Type": ...})
    answer.status, answer.headers, answer.body
    await http.request("GET", url, on_chunk=kept.extend)   # the body in pieces, not kept
    http.close()                                           # its sockets closed now

Tornado's simple_httpclient opens a connection for every request and closes it after. A
claim's two sends (its SMS and the giver's notice) cost the bot ~600 µs of CPU each that way
on loopback — the connect, TCP's handshake and teardown, and the client's own machinery —
against ~200 µs through a kept-alive aiohttp session (issue 27); against api.weixin.qq.com
each new connection is a TLS handshake more. aiohttp is here already (Aliyun's SMS SDK
brings it); TLS is Python's own `ssl` with the system's certificates, as before.

A connection idle for KEEPALIVE seconds is closed by us, before the far end is likely to
close it: a request rarely meets a connection the server has just dropped, and one that does
fails as Unanswered (it may have gone), as any lost answer does.

Errors: Unreached (nothing was sent: refused, no such host, TLS refused, the connect timed
out) and Unanswered (the request may have arrived: reset, closed, timed out waiting).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

import aiohttp

KEEPALIVE = 5.0  # seconds a connection may stay idle before we close it


class Unreached(Exception):
    """The request never left: the far end was not reached."""


class Unanswered(Exception):
    """The request may have arrived, but no whole answer came back."""


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes  # empty when the body went to `on_chunk`


class Http:
    """At most `most` connections at once, kept open between requests; one session per event
    loop (a new loop, as `asyncio.run` brings, gets a new one)."""

    def __init__(self, connect_timeout: float, timeout: float, most: int = 10):
        self.connect_timeout, self.timeout, self.most = connect_timeout, timeout, most
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: AsyncIterator[None] | None = None  # closes the session with its loop

    async def request(
        self, method: str, url: str, body: bytes | None = None,
        headers: Mapping[str, str] | None = None, *, connect_timeout: float | None = None,
        timeout: float | None = None, on_chunk: Callable[[bytes], None] | None = None,
    ) -> Answer:  # fmt: skip
        limits = aiohttp.ClientTimeout(
            total=timeout or self.timeout, sock_connect=connect_timeout or self.connect_timeout
        )
        session = await self._here()
        try:
            async with session.request(
                method, url, data=body, headers=headers, timeout=limits
            ) as response:
                if on_chunk is None:
                    return Answer(response.status, response.headers, await response.read())
                async for chunk in response.content.iter_any():
                    on_chunk(chunk)
                return Answer(response.status, response.headers, b"")
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise Unreached(_said(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unanswered(_said(exc)) from exc

    def close(self) -> None:
        """Close the kept connections now (from code that cannot await, at a shutdown or when
        the loop changed); the next request opens anew."""
        session, self._session, self._loop, self._held = self._session, None, None, None
        if session is None or session.closed:
            return
        connector = session.connector
        session.detach()  # the session counts as closed now
        if connector is not None:
            # aiohttp's own close is a coroutine around this, its synchronous part: the sockets
            # are closed here (on a loop already closed it can only mark the connector so).
            connector._close()

    async def _here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            self.close()  # the previous loop's, if any, is no use in this one
            connector = aiohttp.TCPConnector(limit=self.most, keepalive_timeout=KEEPALIVE)
            session = aiohttp.ClientSession(connector=connector)
            self._held = _closed_with_the_loop(session)
            await anext(self._held)
            self._session, self._loop = session, loop
        return self._session


async def _closed_with_the_loop(session: aiohttp.ClientSession) -> AsyncIterator[None]:
    """Open while its loop runs. `asyncio.run` closes the async generators still open before
    it closes its loop (`shutdown_asyncgens`), and this one closes the session then: a session
    never outlives its loop with its sockets open, though nobody called close()."""
    try:
        yield
    finally:
        await session.close()


def _said(exc: BaseException) -> str:
    """What went wrong, in one line: the exception's text, or its kind when it has none."""
    return str(exc) or type(exc).__name__
