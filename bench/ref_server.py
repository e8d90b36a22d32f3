"""Reference servers for the intake ratio: `ref_server.py MODE PORT DIR`.

- `bare`: an aiohttp handler that reads the body and answers 202, no other work: the baseline.
- `groupcommit`: answers 202 only after the body is in an fsync'd SQLite group commit (WAL,
  synchronous=FULL, one writer thread committing whatever is queued): the floor of what a
  durable intake costs in Python.
- `percommit`: the same, one transaction (one fsync) per request.

The two SQLite modes calibrate the harness: the task expects them near 0.8x and 0.25x of bare.
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

from aiohttp import web


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(status=202)


def sqlite_app(path: Path, group: bool) -> web.Application:
    work: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def writer() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS d (id INTEGER PRIMARY KEY, at REAL, body BLOB)")
        while True:
            batch = [work.get()]
            if group:
                while True:
                    try:
                        batch.append(work.get_nowait())
                    except queue.Empty:
                        break
            conn.execute("BEGIN IMMEDIATE")
            for body, _fut, _loop in batch:
                conn.execute("INSERT INTO d (at, body) VALUES (?, ?)", (time.time(), body))
            conn.execute("COMMIT")
            for _body, fut, loop in batch:
                loop.call_soon_threadsafe(fut.set_result, None)

    threading.Thread(target=writer, daemon=True).start()

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        work.put((body, fut, loop))
        await fut
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    return app


def main() -> None:
    mode, port, tmp = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    if mode == "bare":
        app = web.Application()
        app.router.add_post("/{tail:.*}", bare)
    else:
        app = sqlite_app(tmp / f"{mode}.db", group=mode == "groupcommit")
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def ready(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


if __name__ == "__main__":
    main()
