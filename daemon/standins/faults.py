"""Vendor outages on demand for the HTTP fakes: 500s, 429 + Retry-After, hangs, resets.

Every fake server takes a `FaultPlan` middleware; a test queues what the next requests suffer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Fault:
    status: int = 500
    retry_after_s: float | None = None
    retry_after: str = ""  # a raw Retry-After value, e.g. an HTTP-date; wins over retry_after_s
    delay_s: float = 0.0  # hang this long before answering (past the client's timeout)
    reset: bool = False  # drop the connection without an answer
    body: str = '{"error": "injected fault"}'


class FaultPlan:
    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self.injected = 0

    def add(self, fault: Fault, times: int = 1) -> None:
        self._queue.extend([fault] * times)

    def clear(self) -> None:
        self._queue.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not self._queue:
            return await handler(request)
        fault = self._queue.popleft()
        self.injected += 1
        await request.read()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.reset:
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("injected reset")
        headers = {}
        if fault.retry_after:
            headers["Retry-After"] = fault.retry_after
        elif fault.retry_after_s is not None:
            headers["Retry-After"] = f"{fault.retry_after_s:g}"
        return web.Response(status=fault.status, text=fault.body, headers=headers,
                            content_type="application/json")
