"""A minimal asyncio HTTP server on the socket preforkd passes as fd 3.

Standard library only: it takes fd 3 as systemd socket activation says (LISTEN_FDS,
LISTEN_PID), tells preforkd READY=1 through NOTIFY_SOCKET, and on SIGTERM stops
accepting and finishes the requests in flight.
"""
import asyncio
import os
import signal
import socket
import sys

SLOT = os.environ.get("PREFORK_WORKER_ID", "?")


def sd_notify(state: str) -> None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        s.connect(addr)
        s.sendall(state.encode())


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass  # headers: not needed here
        parts = request_line.split()
        path = parts[1] if len(parts) > 1 else b"/"
        if path.startswith(b"/slow"):
            await asyncio.sleep(1)
        body = f"hello from python-asyncio, slot {SLOT} pid {os.getpid()}\n".encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main() -> None:
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or int(os.environ.get("LISTEN_FDS", "0")) < 1:
        sys.exit("server.py: no socket from preforkd (LISTEN_FDS/LISTEN_PID not set for this process)")
    in_flight: set[asyncio.Task] = set()

    async def tracked(reader, writer):
        task = asyncio.current_task()
        in_flight.add(task)
        try:
            await handle(reader, writer)
        finally:
            in_flight.discard(task)

    server = await asyncio.start_server(tracked, sock=socket.socket(fileno=3), backlog=4096)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    sd_notify("READY=1")
    await stop.wait()
    sd_notify("STOPPING=1")
    # Stop accepting first, without closing the server yet: asyncio hands each accepted
    # connection to a task that creates its transport a loop turn later, and a transport
    # created after Server.close() fails (Python 3.11 asserts the server still has its
    # sockets), which drops that connection unanswered. So no more accepts, let those
    # tasks run, then close (preforkd keeps the socket for the next worker).
    loop = asyncio.get_running_loop()
    for sock in server.sockets:
        loop.remove_reader(sock.fileno())
    await asyncio.sleep(0.05)
    server.close()
    # Then wait until no accepted connection is open any more: every transport is counted
    # by the server from its creation to its close (Server._active_count; Python 3.11's
    # wait_closed() does not wait for them, 3.12.1 does).
    deadline = loop.time() + 25
    while loop.time() < deadline:
        await asyncio.sleep(0.01)
        if not in_flight and getattr(server, "_active_count", 0) == 0:
            break


if __name__ == "__main__":
    asyncio.run(main())
