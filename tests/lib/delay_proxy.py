#!/usr/bin/python3
"""delay_proxy.py - a TCP forwarder that delays every byte by a fixed time

    delay_proxy.py [--mark N] LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS [...]

Stands in for `tc netem delay` where the kernel has no netem (the LAN test's
hosts are network namespaces of one machine): each direction of each
connection is a queue of (due time, bytes), written out in order once due,
so the link's latency is DELAY_MS each way without limiting its throughput.
Runs until killed. Several LISTEN TARGET DELAY triples may be given. With
--mark, its own connections carry that firewall mark (SO_MARK), so a NAT
rule that sends traffic to it can let its onward connections pass.
"""
import asyncio
import socket
import sys
import time

MARK = 0


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def pump():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(pump())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await queue.put((time.monotonic() + delay, data))
    except (ConnectionError, OSError):
        pass
    await queue.put((0, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def serve(listen, target, delay):
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def handle(reader, writer):
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if MARK:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, MARK)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (thost, int(tport)))
            up_reader, up_writer = await asyncio.open_connection(sock=sock)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer, delay), pipe(up_reader, writer, delay),
                             return_exceptions=True)

    server = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True)
    async with server:
        await server.serve_forever()


async def main(args):
    triples = [args[i:i + 3] for i in range(0, len(args), 3)]
    await asyncio.gather(*(serve(l, t, int(d) / 1000.0) for l, t, d in triples))


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) >= 2 and args[0] == "--mark":
        MARK = int(args[1])
        args = args[2:]
    if len(args) < 3 or len(args) % 3:
        sys.exit(__doc__)
    asyncio.run(main(args))
