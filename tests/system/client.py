#!/usr/bin/env python3
# A fresh-connection HTTP client for the system tests, run inside the container:
#   client.py PORT STOPFILE OUTFILE [THREADS]
# THREADS loops each open a new connection per GET / to 127.0.0.1:PORT until STOPFILE
# exists; OUTFILE.started appears after the first answered request; then OUTFILE gets "ok N failed M max_ms L" (L: the slowest answered request; a failure: refused, reset, timeout or not 200).
import os, socket, sys, threading, time

port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
counts = {"ok": 0, "failed": 0, "max_ms": 0}
lock = threading.Lock()

def one():
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.startswith(b"HTTP/1.1 200")

def loop():
    while not os.path.exists(stop):
        t = time.monotonic()
        try:
            ok = one()
        except OSError:
            ok = False
        ms = int((time.monotonic() - t) * 1000)
        with lock:
            if ok:
                counts["max_ms"] = max(counts["max_ms"], ms)
            counts["ok" if ok else "failed"] += 1
            if counts["ok"] == 1 and ok:
                open(out + ".started", "w").close()
        if not ok:
            time.sleep(0.01)

ts = [threading.Thread(target=loop) for _ in range(threads)]
for t in ts: t.start()
for t in ts: t.join()
with open(out + ".tmp", "w") as f:
    f.write("ok %d failed %d max_ms %d\n" % (counts["ok"], counts["failed"], counts["max_ms"]))
os.rename(out + ".tmp", out)
