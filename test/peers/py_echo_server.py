"""Echo server on Python `websockets` for the interop tests.

Prints "PORT <n>" once listening, "OPEN <path> <extensions>" per connection
and "CLOSED <code> <reason>" when a connection ends (the code and reason the
peer sent). Echoes every message with its type. The text "close-me" makes the
server close with 4002 "py bye"; the text "ping-me" makes it ping with the
payload "py-ping" and report "PONG" when the answer comes.
"""
import argparse
import asyncio
import ssl
import sys

import websockets


def out(*parts):
    print(*parts, flush=True)


def request_info(ws):
    # websockets <= 12 (legacy API) vs the newer asyncio implementation
    path = getattr(ws, "path", None)
    headers = getattr(ws, "request_headers", None)
    if path is None:
        path = ws.request.path
        headers = ws.request.headers
    return path, headers.get("Sec-WebSocket-Extensions", "-")


def response_extensions(ws):
    headers = getattr(ws, "response_headers", None)
    if headers is None:
        headers = ws.response.headers
    return headers.get("Sec-WebSocket-Extensions", "-")


async def handler(ws, path=None):
    req_path, offered = request_info(ws)
    out("OPEN", req_path, "offer=" + offered.replace(" ", ""), "accepted=" + response_extensions(ws).replace(" ", ""))
    try:
        async for msg in ws:
            if msg == "close-me":
                await ws.close(code=4002, reason="py bye")
                break
            if msg == "ping-me":
                waiter = await ws.ping(b"py-ping")
                await asyncio.wait_for(waiter, 5)
                out("PONG")
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass
    finally:
        out("CLOSED", ws.close_code, ws.close_reason)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--compression", choices=["on", "off"], default="on")
    ap.add_argument("--lifetime", type=float, default=120.0)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    tls = None
    if a.cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(a.cert, a.key)
    server = await websockets.serve(
        handler,
        "127.0.0.1",
        a.port,
        compression="deflate" if a.compression == "on" else None,
        max_size=64 * 1024 * 1024,
        ssl=tls,
    )
    port = next(iter(server.sockets)).getsockname()[1]
    out("PORT", port)
    # Bounded: the test kills us, this is only a safety net.
    await asyncio.sleep(a.lifetime)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
