"""The baseline: the least an aiohttp HTTPS webhook can do, on routewarden's TLS settings.

Same certificate (ECDSA P-256, made by ``routewarden certs``), same ``SSLContext``
(:func:`webhook.tls.server_context`), same keep-alive timeout, same request body limit
and the same JSON library (orjson). It parses the whole AdmissionReview, as a webhook
must, and answers ``allowed: true`` for its uid. No policies, no state, no telemetry,
no logging: what is left is the cost of TLS, HTTP and JSON in Python, which bounds what
any Python webhook on this machine can do.

    python bench/baseline.py --cert-dir DIR --port PORT [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson
from aiohttp import web

from webhook.server import KEEPALIVE_TIMEOUT, MAX_BODY_BYTES
from webhook.tls import server_context


async def answer(request: web.Request) -> web.Response:
    review = orjson.loads(await request.read())
    response = {"apiVersion": review["apiVersion"], "kind": "AdmissionReview",
                "response": {"uid": review["request"]["uid"], "allowed": True}}
    return web.Response(body=orjson.dumps(response), content_type="application/json")


async def ready(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def create_app() -> web.Application:
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app.router.add_post("/validate", answer)
    app.router.add_post("/mutate", answer)
    app.router.add_get("/readyz", ready)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--uvloop", action="store_true", help="serve on uvloop's event loop")
    args = parser.parse_args(argv)
    context = server_context(args.cert_dir / "tls.crt", args.cert_dir / "tls.key")
    loop = None
    if args.uvloop:
        import uvloop

        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
    web.run_app(create_app(), host=args.address, port=args.port, ssl_context=context,
                keepalive_timeout=KEEPALIVE_TIMEOUT, access_log=None, print=None, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
