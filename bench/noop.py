"""A no-op alert endpoint: the same aiohttp server stack as the receiver, answering 200 at once.

    python -m bench.noop --port 18999

The reference for the sequential sender: what one connection can do when the server does no work.
"""

from __future__ import annotations

import argparse

from aiohttp import web


async def accept(request: web.Request) -> web.Response:
    await request.read()
    return web.json_response({"status": "ok"})


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    app = web.Application(client_max_size=1024 * 1024)
    app.add_routes([web.post("/v1/alerts", accept), web.get("/healthz", healthz)])
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
