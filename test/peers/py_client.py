"""Python `websockets` client for the interop tests.

Connects to URL, sends a short text, a long text and a binary message,
checks that each comes back identical with its type, pings, then closes with
--close-code / --close-reason. Prints one JSON line with what it saw and
exits 0 only if every check passed.
"""
import argparse
import asyncio
import json
import sys

import websockets


def response_extensions(ws):
    headers = getattr(ws, "response_headers", None)
    if headers is None:
        headers = ws.response.headers
    return headers.get("Sec-WebSocket-Extensions", "")


async def run(a):
    result = {"ok": False, "checks": [], "extensions": None}
    async with websockets.connect(
        a.url,
        compression="deflate" if a.compression == "on" else None,
        max_size=64 * 1024 * 1024,
        open_timeout=10,
        close_timeout=5,
    ) as ws:
        result["extensions"] = response_extensions(ws)
        # the server's own message, sent when the connection opened
        if a.expect_greeting:
            got = await asyncio.wait_for(ws.recv(), 10)
            result["greeting"] = got if isinstance(got, str) else got.hex()
        long_text = "".join(chr(0x41 + i % 26) + "é€😀" for i in range(20000))
        payloads = [
            "hello from python ✓",
            long_text,
            bytes(i % 256 for i in range(70000)),
            b"",
        ]
        for p in payloads:
            await ws.send(p)
        for i, p in enumerate(payloads):
            got = await asyncio.wait_for(ws.recv(), 10)
            same = type(got) is type(p) and got == p
            result["checks"].append({"i": i, "type": type(got).__name__, "len": len(got), "same": same})
        pong = await ws.ping(b"py-client-ping")
        await asyncio.wait_for(pong, 5)
        result["pong"] = True
        await ws.close(code=a.close_code, reason=a.close_reason)
        result["close_code"] = ws.close_code
        result["close_reason"] = ws.close_reason
    result["ok"] = all(c["same"] for c in result["checks"]) and len(result["checks"]) == 4
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--compression", choices=["on", "off"], default="on")
    ap.add_argument("--close-code", type=int, default=4003)
    ap.add_argument("--close-reason", default="py says bye")
    ap.add_argument("--expect-greeting", action="store_true")
    a = ap.parse_args()
    try:
        r = asyncio.run(asyncio.wait_for(run(a), 30))
    except Exception as e:  # report, never hang
        r = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    print(json.dumps(r), flush=True)
    sys.exit(0 if r.get("ok") else 1)


if __name__ == "__main__":
    main()
