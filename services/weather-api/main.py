"""A tiny "external weather API": the third party the ingestion service calls
through its sidecar's outbound proxy. Not an Outrigger app: no sidecar of its
own. Every FAIL_EVERY-th conditions request answers 503, so the caller's
sidecar has a failure to retry. Standard library only."""

import json
import os
import random
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = os.environ.get("WEATHER_HOST", "127.0.0.1")
PORT = int(os.environ.get("WEATHER_PORT", "8090"))
FAIL_EVERY = os.environ.get("FAIL_EVERY", "4")
if not FAIL_EVERY.isdigit():
    sys.exit("FAIL_EVERY must be a whole number (0: never fail)")
FAIL_EVERY = int(FAIL_EVERY)
CONDITIONS = re.compile(r"^/v1/conditions/([^/]+)$")

lock = threading.Lock()
printing = threading.Lock()
served = 0


def failing():
    """Whether this conditions request is a FAIL_EVERY-th one (counted across all threads)."""
    global served
    with lock:
        served += 1
        return FAIL_EVERY > 0 and served % FAIL_EVERY == 0


class Handler(BaseHTTPRequestHandler):
    # Kept-alive connections: the sidecar reuses its connections to a target.
    protocol_version = "HTTP/1.1"
    # An idle kept-alive connection never holds its thread for long, and outlives the sidecar's 30 s keep-alive: the
    # client closes an idle connection first, so it never reuses one the server is closing.
    timeout = 60

    def do_GET(self):
        self.skip_body()  # a GET with a body: its bytes must not pass for the next request on the connection
        path = self.path.split("?", 1)[0]
        match = CONDITIONS.match(path)
        if path == "/healthz":
            self.answer(200, {"status": "ok"}, path)
        elif match is None:
            self.answer(404, {"error": "not found"}, path)
        elif failing():
            body = {"error": "unavailable", "detail": f"every {ordinal(FAIL_EVERY)} request fails"}
            self.answer(503, body, path, f"every {ordinal(FAIL_EVERY)}")
        else:
            body = {
                "sensor": match.group(1),
                "ambientC": round(random.gauss(19.0, 0.4), 1),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            self.answer(200, body, path)

    def skip_body(self):
        try:
            length = int(self.headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or self.headers.get("transfer-encoding"):
            self.close_connection = True  # a body it cannot measure: the connection ends with this answer
        elif length:
            self.rfile.read(length)

    def do_other(self):
        self.close_connection = True  # a body it does not read must not pass for the next request
        self.answer(404, {"error": "not found"}, self.path.split("?", 1)[0])

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_other

    def answer(self, status, body, path, note=None):
        notes = [note] if note else []
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The caller gave up first (its sidecar's per-attempt timeout, say): no traceback, one line.
            notes.append("the caller had gone")
            self.close_connection = True
        suffix = f" ({'; '.join(notes)})" if notes else ""
        with printing:  # one whole line at a time, whichever thread prints
            print(f"{self.command} {path} -> {status}{suffix}", flush=True)

    def log_message(self, format, *args):
        pass  # one line per request, from answer(), instead of the access log


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A caller that hangs up mid-request is no error of the server's: no traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def ordinal(n):
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def main():
    try:
        server = Server((HOST, PORT), Handler)
    except OSError as error:
        print(f"cannot listen on {HOST}:{PORT}: {error}", file=sys.stderr, flush=True)
        return 1

    def stop(_signum, _frame):
        # shutdown() waits for serve_forever() to return: it cannot run on serve_forever's own thread.
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    every = f"every {ordinal(FAIL_EVERY)} conditions request answers 503" if FAIL_EVERY > 0 else "never fails"
    print(f"listening on {HOST}:{PORT}; {every}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
