"""Python `websockets` peer for the subprotocol tests.

server --protocols a,b : serves on 127.0.0.1, prints "PORT <n>", then
  "OPEN <subprotocol or -> <offer or ->" per connection (and echoes).
client URL --protocols a,b : connects offering them, prints
  "PROTOCOL <subprotocol or ->" and closes, or "ERROR <why>" on failure.
"""
import argparse
import asyncio
import sys

import websockets


def out(*parts):
    print(*parts, flush=True)


def request_offer(ws):
    headers = getattr(ws, "request_headers", None)
    if headers is None:
        headers = ws.request.headers
    return headers.get("Sec-WebSocket-Protocol", "-")


async def handler(ws, path=None):
    out("OPEN", ws.subprotocol or "-", request_offer(ws).replace(" ", ""))
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def serve(a):
    supported = [p for p in a.protocols.split(",") if p]
    # (with several in common websockets weighs both sides' order: the
    # tests offer one in common at most)
    server = await websockets.serve(handler, "127.0.0.1", 0, subprotocols=supported or None)
    out("PORT", next(iter(server.sockets)).getsockname()[1])
    await asyncio.sleep(a.lifetime)
    server.close()
    await server.wait_closed()


async def connect(a):
    offer = [p for p in a.protocols.split(",") if p]
    try:
        async with websockets.connect(a.url, subprotocols=offer or None, open_timeout=10, close_timeout=5) as ws:
            out("PROTOCOL", ws.subprotocol or "-")
            await ws.send("hi")
            out("ECHO", await asyncio.wait_for(ws.recv(), 5))
    except Exception as e:  # the test reads why
        out("ERROR", type(e).__name__, str(e).replace("\n", " "))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("url", nargs="?")
    ap.add_argument("--protocols", default="")
    ap.add_argument("--lifetime", type=float, default=60.0)
    a = ap.parse_args()
    asyncio.run(serve(a) if a.mode == "server" else connect(a))


if __name__ == "__main__":
    main()
