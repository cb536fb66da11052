#!/usr/bin/env python3
"""stop_client.py PORT STOP_FILE: a client running through a graceful stop.

A request in flight through the stop: connected and half sent before the stop begins, its
last header line sent 1 s after the stop began; it must be answered in full (lighttpd's
graceful shutdown finishes accepted connections). Two loops of fresh-connection GET / on
127.0.0.1:PORT beside it. Prints "in flight" once the slow request is connected (the caller
then starts the stop and writes the time into STOP_FILE), and at the end one line:
  in-flight failed N of M; ...
Requests sent before the stop began count, and the slow one. Requests sent after it may be
refused or reset (the server is going away): reported, not counted. A slow download of
/big (read at ~1 MB/s) is reported, not counted: when the container's last process exits,
its network namespace goes and with it what the kernel still held to send (see
examples/docker/README.md).
"""
import http.client
import os
import socket
import sys
import threading
import time
from collections import Counter

port = int(sys.argv[1])
stop_file = sys.argv[2]
lock = threading.Lock()
before = Counter()   # outcomes of requests sent before the stop began
after = Counter()    # ... after
download = {"got": 0, "length": -1, "error": ""}
slow = {"result": "not run"}
connected = threading.Event()


def stop_began():
    try:
        with open(stop_file) as f:
            return float(f.read())
    except (OSError, ValueError):
        return None


def get_once():
    sent = time.time()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        outcome = "ok" if resp.status == 200 and b"hello" in body else f"status {resp.status}"
    except Exception as e:  # noqa: BLE001 - every failure is counted by its kind
        outcome = type(e).__name__
    began = stop_began()
    with lock:
        (before if began is None or sent < began else after)[outcome] += 1
    return outcome


def fresh_loop():
    failures_after = 0
    deadline = time.time() + 120
    while time.time() < deadline:
        outcome = get_once()
        began = stop_began()
        if began is not None and outcome != "ok":
            failures_after += 1
            if failures_after >= 3 and time.time() > began + 1:
                return  # the server is gone
        time.sleep(0.01)


def slow_download():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    s.settimeout(5)  # after the stop its tail never comes (no FIN: the namespace is gone)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("closed before the headers")
            head += chunk
        headers, rest = head.split(b"\r\n\r\n", 1)
        for line in headers.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                download["length"] = int(line.split(b":")[1])
        download["got"] = len(rest)
        while True:
            chunk = s.recv(16 * 1024)
            if not chunk:
                break
            download["got"] += len(chunk)
            time.sleep(0.016)  # ~1 MB/s
    except Exception as e:  # noqa: BLE001
        download["error"] = f"{type(e).__name__}: {e}"
    finally:
        s.close()


def slow_request():
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        connected.set()
        while True:
            began = stop_began()
            if began is not None and time.time() > began + 1:
                break
            time.sleep(0.05)
        s.sendall(b"Connection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        ok = data.startswith(b"HTTP/1.1 200") and b"hello from lighttpd" in data
        slow["result"] = "ok" if ok else f"bad answer {data[:60]!r}"
    except Exception as e:  # noqa: BLE001
        slow["result"] = f"{type(e).__name__}: {e}"
    finally:
        connected.set()


def announce():
    connected.wait(30)
    print("in flight", flush=True)


threads = [threading.Thread(target=slow_request), threading.Thread(target=announce),
           threading.Thread(target=slow_download)] + [threading.Thread(target=fresh_loop) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()

download_ok = download["length"] > 0 and download["got"] == download["length"]
failed = sum(n for k, n in before.items() if k != "ok") + (0 if slow["result"] == "ok" else 1)
total = sum(before.values()) + 1
err = f" ({download['error']})" if download["error"] else ""
print(f"in-flight failed {failed} of {total}; request half sent across the stop: {slow['result']}; "
      f"sent before the stop {dict(before)}; sent after it began {dict(after)}; "
      f"not counted: slow download {download['got']} of {download['length']} bytes{err}",
      flush=True)
sys.exit(0 if failed == 0 else 1)
