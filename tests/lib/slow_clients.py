#!/usr/bin/env python3
#  slow_clients.py - hold many slow HTTP connections open against a node
#
#    slow_clients.py PORT COUNT SOURCES READY_FILE [DRIP_S] [HOLD_S] [MODE]
#
#  Opens COUNT connections to 127.0.0.1:PORT, spread round-robin over the
#  comma-separated local SOURCES addresses (127.0.0.2,127.0.0.3: Linux
#  routes all of 127/8 to the loopback device, so each is a distinct client
#  address to the server). Each connection sends a request one byte every
#  DRIP_S seconds (0.5) and never finishes it, which keeps an idle timeout
#  from ever firing: MODE "headers" (the default) drips the request's
#  headers, MODE "body" sends whole headers at once (Content-Length 100000)
#  and drips the body. Once every connection is open and half a second has
#  passed, writes "ready HELD" to READY_FILE. Stops when the server has
#  closed every connection or after HOLD_S seconds (30), then prints one
#  JSON line:
#
#    opened   connections whose connect() succeeded
#    refused  closed by the server before READY_FILE was written (over a limit)
#    held     still open 0.5 s after the last one opened
#    closed   held connections the server closed before HOLD_S
#    open     held connections still open at the end
#    min_life, max_life  seconds from open to close of the closed held ones
#
#  Not a load generator: it sends about 2 bytes per connection per second.
import json
import os
import resource
import selectors
import socket
import sys
import time

port = int(sys.argv[1])
count = int(sys.argv[2])
sources = sys.argv[3].split(",")
ready_file = sys.argv[4]
drip = float(sys.argv[5]) if len(sys.argv) > 5 else 0.5
hold = float(sys.argv[6]) if len(sys.argv) > 6 else 30.0
mode = sys.argv[7] if len(sys.argv) > 7 else "headers"

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < count + 64:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))

HEAD = b"POST /tasks/nope/jobs HTTP/1.1\r\nHost: x\r\n"
if mode == "body":
    FIRST = HEAD + b"Content-Length: 100000\r\n\r\n"
    REQUEST = b"a" * 100000
else:
    FIRST = HEAD[:1]
    REQUEST = HEAD[1:] + b"X-Slow: " + b"a" * 4000

sel = selectors.DefaultSelector()
conns = {}          # socket -> [opened_at, bytes_sent, closed_at or None]
opened = 0
for i in range(count):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.bind((sources[i % len(sources)], 0))
        s.connect(("127.0.0.1", port))
        s.sendall(FIRST)
    except OSError:
        s.close()
        continue
    s.setblocking(False)
    opened += 1
    conns[s] = [time.monotonic(), 0, None]
    sel.register(s, selectors.EVENT_READ)

def close_seen(s, now):
    state = conns[s]
    if state[2] is None:
        state[2] = now
        sel.unregister(s)
        s.close()

def poll(timeout):
    for key, _ in sel.select(timeout):
        s = key.fileobj
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:                 # EOF, reset, or an answer: all end it
            close_seen(s, time.monotonic())

last_open = time.monotonic()
settle_end = last_open + 0.5
while time.monotonic() < settle_end:
    poll(0.05)
held = [s for s, st in conns.items() if st[2] is None]
refused = opened - len(held)
with open(ready_file + ".tmp", "w") as f:
    f.write("ready %d\n" % len(held))
os.rename(ready_file + ".tmp", ready_file)

start = time.monotonic()
next_drip = start
while time.monotonic() - start < hold:
    if all(conns[s][2] is not None for s in held):
        break
    now = time.monotonic()
    if now >= next_drip:
        for s in held:
            st = conns[s]
            if st[2] is not None:
                continue
            try:
                s.send(REQUEST[st[1] % len(REQUEST):][:1])
                st[1] += 1
            except OSError:
                close_seen(s, time.monotonic())
        next_drip = now + drip
    poll(min(0.05, max(0.0, next_drip - time.monotonic())))

lives = [conns[s][2] - conns[s][0] for s in held if conns[s][2] is not None]
print(json.dumps({
    "opened": opened,
    "refused": refused,
    "held": len(held),
    "closed": len(lives),
    "open": len(held) - len(lives),
    "min_life": round(min(lives), 3) if lives else None,
    "max_life": round(max(lives), 3) if lives else None,
}))
