"""A WSGI app that says which process answered."""
import os
import time


def app(environ, start_response):
    if environ.get("PATH_INFO", "/").startswith("/slow"):
        time.sleep(1)
    body = "hello from {}, slot {} pid {}\n".format(
        os.environ.get("EXAMPLE_SERVER", "wsgi"), os.environ.get("PREFORK_WORKER_ID"), os.getpid()
    ).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
