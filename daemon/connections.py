"""A cap on concurrent connections per listener, around aiohttp's protocol factory.

Each open connection costs memory before any handler runs: aiohttp buffers up to twice
`read_bufsize` of body per connection, the event loop hands over up to 256 KiB per socket read,
and there are the parser, the request and its task. `http.max_buffered_bytes` bounds the
bodies held; only a bound on the connections themselves bounds the rest (issue 14: 200 greedy
connections grew the RSS by 110-245 MB under the byte cap; 3,000 without this cap, 0.2-1.2 GB).

`ConnectionCap` wraps the listener's protocol factory (`web.Server`, which makes one
`RequestHandler` per connection). Every connection gets a `_Counted` protocol that decides
in `connection_made`, when the socket really is ours: under the cap it is counted and handed
to aiohttp's handler; at the cap it is closed at once, before a byte is read.

Why close rather than answer 503: an answer needs the request's bytes read (or the close
resets the connection under the answer, and the client sees a reset either way) and lingering
after it, which is the memory and time the cap is there to refuse. A refused connection costs
one accept and one close. Vendors retry a delivery whose connection failed, as they retry a 5xx.

An admitted connection's socket gets a small kernel receive buffer (`RECEIVE_BUFFER_BYTES`).
The event loop reads whatever the kernel holds, up to 256 KiB at a time, into a new `bytes`,
and aiohttp takes up to twice `read_bufsize` (128 KiB) before it pauses reading: a greedy
sender fills both on every connection. A 32 KiB buffer (Linux doubles it: 64 KiB) bounds each
read, and so what a connection holds before its handler can refuse it, to ~200 KiB. Measured
(`bench/run --only slow`, 1,000 greedy connections, cap 256): RSS growth 136-163 MB without
it, 41-47 MB with it. The cost is a TCP window of 64 KiB: a 1 MiB body over a 100 ms round trip
takes ~1.6 s instead of less, a webhook of a few KB is unaffected.

The count is taken in `connection_made` and given back in `connection_lost`, which asyncio
calls exactly once for every transport whose `connection_made` ran (also on reset, abort and
shutdown), so it cannot leak; a TLS handshake that fails never reaches either.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

from aiohttp import web

from daemon.logging import get_logger

log = get_logger("tier2gate.connections")

REFUSAL_LOG_INTERVAL_S = 60.0
RECEIVE_BUFFER_BYTES = 32 * 1024  # SO_RCVBUF asked for; Linux reserves twice this


class ConnectionCap:
    """Protocol factory for `loop.create_server`: at most `limit` connections open at once.

    `receive_buffer_bytes`: SO_RCVBUF for every admitted socket (None: the kernel's own).
    `on_refused` is called for every refused connection (the metric); a warning is logged for
    the first refusal and then at most once per `log_interval_s`, with how many were refused
    since the last line, so a flood of connections never floods the log.
    """

    def __init__(self, factory: Callable[[], asyncio.BaseProtocol], limit: int, *,
                 listener: str, on_refused: Callable[[], None] = lambda: None,
                 log_interval_s: float = REFUSAL_LOG_INTERVAL_S,
                 receive_buffer_bytes: int | None = RECEIVE_BUFFER_BYTES) -> None:
        self._factory = factory
        self.receive_buffer_bytes = receive_buffer_bytes
        self.limit = limit
        self.listener = listener
        self.open = 0
        self.refused = 0
        self._on_refused = on_refused
        self._log_interval_s = log_interval_s
        self._logged_at: float | None = None
        self._unlogged = 0

    def count(self) -> float:
        """Connections open now (the `tier2gate_connections_open` gauge reads it)."""
        return self.open

    def __call__(self) -> asyncio.Protocol:
        return _Counted(self)

    def _admit(self) -> asyncio.BaseProtocol | None:
        if self.open >= self.limit:
            self._refuse()
            return None
        self.open += 1
        return self._factory()

    def _release(self) -> None:
        self.open -= 1

    def _refuse(self) -> None:
        self.refused += 1
        self._unlogged += 1
        self._on_refused()
        now = asyncio.get_running_loop().time()
        if self._logged_at is None or now - self._logged_at >= self._log_interval_s:
            log.warning("listener.connections_refused", listener=self.listener,
                        max_connections=self.limit, refused=self._unlogged,
                        refused_total=self.refused)
            self._logged_at = now
            self._unlogged = 0


class _Counted(asyncio.Protocol):
    """One connection: aiohttp's handler under the cap, else closed at once.

    The handler is made only once the connection is admitted; every later callback goes
    straight to it (one extra call each, no copy).
    """

    __slots__ = ("_cap", "_inner")

    def __init__(self, cap: ConnectionCap) -> None:
        self._cap = cap
        self._inner: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner = self._cap._admit()
        if self._inner is None:
            transport.abort()  # type: ignore[attr-defined]  # nothing read, nothing written
            return
        if self._cap.receive_buffer_bytes:
            _set_receive_buffer(transport, self._cap.receive_buffer_bytes)
        self._inner.connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            self._cap._release()
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            result: bool | None = self._inner.eof_received()
            return result
        return None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def _set_receive_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:  # not fatal: the kernel's own buffer, as before
        log.debug("listener.receive_buffer_not_set", error=str(exc))


class CappedTCPSite(web.BaseSite):
    """`web.TCPSite` with the runner's protocol factory wrapped in a `ConnectionCap`.

    It does what `TCPSite.start` does (register with the runner, `loop.create_server`), so the
    runner's cleanup stops it and closes its connections as it would a `TCPSite`'s.
    """

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, max_connections: int,
                 listener: str, on_refused: Callable[[], None] = lambda: None) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        assert runner.server is not None  # BaseSite checked it
        self.cap = ConnectionCap(runner.server, max_connections, listener=listener,
                                 on_refused=on_refused)

    @property
    def name(self) -> str:
        return f"http://[{self._host}]:{self._port}" if ":" in self._host \
            else f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self.cap, self._host, self._port,
                                                backlog=self._backlog)
