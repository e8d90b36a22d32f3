"""Slow and greedy clients: what one connection, and all of them together, may cost us.

A webhook body is read before its signature can be checked, so anyone can make us buffer it.
Three bounds keep that cheap:

- the body must arrive within `http.body_timeout_s` of its head (408 otherwise);
- the bytes of request bodies held at once, across all connections, stay under
  `http.max_buffered_bytes`; a body that would cross it gets 503 with `Retry-After` and its
  connection is closed, so nothing more of it is read;
- `http.max_body_bytes` per body (413), as before.

Bytes are counted as they arrive, not as announced by `Content-Length`: a client that
announces 1 MiB and sends nothing costs nothing, and so cannot lock honest vendors out. The
bytes stay counted until the answer has been sent (`release_held_bytes`), because the body
is kept until then. Idle connections and slow request heads are aiohttp's keep-alive timer's
job (`daemon.listeners`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

HELD_KEY = web.RequestKey("held_bytes", int)  # per request: body bytes charged to the budget
RETRY_AFTER_S = 5


class ByteBudget:
    """Bytes of unanswered request bodies across all connections; one per listener."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, count: int) -> bool:
        if self.held + count > self.limit:
            return False
        self.held += count
        return True

    def give(self, count: int) -> None:
        self.held -= count


BUDGET = web.AppKey("body_budget", ByteBudget)


class BodyRefused(Exception):
    """The body was not read to its end; `reason` is the rejection metric's label and
    `answer()` makes the response.

    It carries a way to make the answer, not the answer itself: the answer is raised while
    this exception is being handled, so it refers back to it (`__context__`), and a reference
    back from here would make a cycle. A cycle is freed only by the cyclic garbage collector,
    late, and through this exception's traceback it would keep the request and its buffered
    body alive: under a greedy flood that held ~0.6 MB per refused connection.
    """

    def __init__(self, reason: str, answer: Callable[[], web.HTTPException]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer


def _json_error(cls: type[web.HTTPException], error: str, **headers: str
                ) -> Callable[[], web.HTTPException]:
    def answer() -> web.HTTPException:
        response = cls(text=json.dumps({"error": error}), content_type="application/json",
                       headers=headers or None)
        # The rest of the body is unread: close instead of draining it for keep-alive.
        response.force_close()
        return response
    return answer


Refusal = tuple[str, Callable[[], web.HTTPException]]
"""Why a body is refused and how to answer. The exception is made only where it is raised:
kept as a local it would refer to the reading frame, and the body, through its traceback."""


async def read_bounded(request: web.Request, max_body_bytes: int, timeout_s: float) -> bytes:
    """The whole body, charged to the app's budget chunk by chunk as it arrives.

    Raises `BodyRefused` for a slow body (408), a full budget (503) or a body over
    `max_body_bytes` (413). Reading with `readany` instead of `request.read()` also keeps
    aiohttp's per-connection buffer at `read_bufsize`: `read()` raises it to the body limit.
    """
    budget = request.app[BUDGET]
    # The chunks as aiohttp handed them over, joined once at the end, so that a body is not
    # reallocated and copied again and again while it grows.
    chunks: list[bytes] = []
    async def read() -> Refusal | None:
        size = 0
        while chunk := await request.content.readany():
            if size + len(chunk) > max_body_bytes:
                return "too_large", partial(
                    web.HTTPRequestEntityTooLarge, max_size=max_body_bytes,
                    actual_size=size + len(chunk))
            if not budget.take(len(chunk)):
                return "overloaded", _json_error(
                    web.HTTPServiceUnavailable, "too many request bodies in flight; "
                    "retry later", **{"Retry-After": str(RETRY_AFTER_S)})
            request[HELD_KEY] = request.get(HELD_KEY, 0) + len(chunk)
            chunks.append(chunk)
            size += len(chunk)
        return None

    refused: Refusal | None
    if request.content.is_eof():
        # Already all here (a webhook of a few KB comes with its head): nothing can be slow,
        # so no deadline timer to arm and cancel.
        refused = await read()
    else:
        try:
            async with asyncio.timeout(timeout_s):
                refused = await read()
        except TimeoutError:
            refused = "slow", _json_error(
                web.HTTPRequestTimeout, f"body not received within {timeout_s:g} s")
    if refused is not None:
        # This frame lives as long as the exception's traceback: let go of the body first.
        chunks.clear()
        raise BodyRefused(*refused)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


@web.middleware
async def release_held_bytes(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Give a request's body bytes back to the budget once it has been answered."""
    try:
        return await handler(request)
    finally:
        request.app[BUDGET].give(request.get(HELD_KEY, 0))
