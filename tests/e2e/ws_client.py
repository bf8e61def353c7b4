#!/usr/bin/python3
"""A real WebSocket client for the end-to-end tests (Debian's python3-websockets).

    ws_client.py URL STEPS_JSON [--header NAME:VALUE]... [--subprotocol P]...

STEPS_JSON is a list of steps, run in order after the handshake:
    ["send", "text"]          a text message
    ["sendb", "hex"]          a binary message
    ["recv"]                  waits (5 s at most) for one message
    ["recv_timeout", s]       waits s seconds for one message ("timeout" when none)
    ["ping", "data"]          a ping; waits for its pong
    ["close", code, "reason"] the close handshake
    ["wait_closed", s]        waits up to s seconds for the server to close
    ["sleep", s]
Every outcome is one JSON line on stdout: {"event": "open", "subprotocol": ...},
{"event": "rejected", "status": N, "body": ...}, {"event": "message", "data": ...,
"binary": bool}, {"event": "pong"}, {"event": "timeout"}, {"event": "closed", "code": N,
"reason": ...}, {"event": "error", "error": ...}.
"""
import asyncio
import json
import sys

import websockets
import websockets.exceptions


def out(**kw):
    print(json.dumps(kw), flush=True)


def closed(ws):
    out(event="closed", code=ws.close_code, reason=ws.close_reason)


async def main():
    url, steps = sys.argv[1], json.loads(sys.argv[2])
    headers, protocols = [], []
    args = sys.argv[3:]
    for i in range(0, len(args), 2):
        if args[i] == "--header":
            name, value = args[i + 1].split(":", 1)
            headers.append((name, value.strip()))
        elif args[i] == "--subprotocol":
            protocols.append(args[i + 1])
    try:
        ws = await websockets.connect(url, extra_headers=headers,
                                      subprotocols=protocols or None,
                                      open_timeout=5, close_timeout=3, ping_interval=None,
                                      max_size=None, compression=None)
    except websockets.exceptions.InvalidStatusCode as e:
        body = getattr(e, "body", None) or b""
        out(event="rejected", status=e.status_code,
            body=body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body))
        return
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        out(event="error", error=repr(e))
        return
    out(event="open", subprotocol=ws.subprotocol)
    try:
        for step in steps:
            op = step[0]
            if op == "send":
                await ws.send(step[1])
            elif op == "sendb":
                await ws.send(bytes.fromhex(step[1]))
            elif op in ("recv", "recv_timeout"):
                wait = step[1] if op == "recv_timeout" else 5
                try:
                    m = await asyncio.wait_for(ws.recv(), wait)
                except asyncio.TimeoutError:
                    out(event="timeout")
                    continue
                if isinstance(m, bytes):
                    out(event="message", data=m.hex(), binary=True)
                else:
                    out(event="message", data=m, binary=False)
            elif op == "ping":
                pong = await ws.ping(step[1])
                await asyncio.wait_for(pong, 5)
                out(event="pong")
            elif op == "close":
                await ws.close(step[1], step[2])
                closed(ws)
            elif op == "wait_closed":
                try:
                    await asyncio.wait_for(ws.wait_closed(), step[1])
                    closed(ws)
                except asyncio.TimeoutError:
                    out(event="timeout")
            elif op == "sleep":
                await asyncio.sleep(step[1])
    except websockets.exceptions.ConnectionClosed:
        closed(ws)
        return
    if ws.open:
        await ws.close()  # the steps are over: a normal close, not a wait for the timeout


asyncio.run(main())
