"""The baseline: the same HTTP stack as Tailor (uvicorn, httptools, uvloop, Starlette) that only
parses each JSON body and answers 200, storing nothing.

Usage: python bench/noop_server.py PORT
"""

from __future__ import annotations

import sys

import msgspec
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_decode = msgspec.json.Decoder().decode


async def collect(request: Request) -> Response:
    _decode(await request.body())
    return Response(b'{"success":true}', media_type="application/json")


app = Starlette(routes=[Route(f"/v1/{k}", collect, methods=["POST"]) for k in ("batch", "track")])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
