"""A real HTTP server on loopback that serves files and misbehaves on request.

It honours `Range: bytes=N-` (206 + Content-Range), and each path can be given a queue of
faults consumed one per request: an HTTP status, a body cut after N bytes, a delay before the
answer, or a stall in the middle of the body. Every request is recorded (path, Range header),
so tests can assert that a resume really asked for the rest.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: An "endless" body stops here (or when the client hangs up), so a broken client cannot
#: fill the test machine's disk.
ENDLESS_LIMIT = 256 << 20


@dataclass
class Fault:
    status: int | None = None  # answer with this HTTP status and no body
    cut_after: int | None = None  # send the full Content-Length but only this many bytes
    delay: float = 0.0  # seconds before the status line
    stall: float = 0.0  # seconds to stop after the first half of the body
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    endless: bool = False  # no Content-Length: the file, then garbage until ENDLESS_LIMIT
    trickle: float = 0.0  # send the body one byte every `trickle` seconds


@dataclass
class FileServer:
    files: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_fault(self, path: str, *faults: Fault) -> None:
        self.faults.setdefault(path, []).extend(faults)

    def ranges(self, path: str) -> list[str | None]:
        return [r for p, r in self.requests if p == path]

    def start(self) -> FileServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                path = self.path
                owner.requests.append((path, self.headers.get("Range")))
                queue = owner.faults.get(path) or []
                fault = queue.pop(0) if queue else Fault()
                if fault.delay:
                    time.sleep(fault.delay)
                body = owner.files.get(path)
                if fault.status is not None or body is None:
                    status = fault.status or 404
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = 0
                wanted = self.headers.get("Range")
                if wanted and not fault.ignore_range:
                    start = int(wanted.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range",
                                     f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                if fault.endless:
                    self.end_headers()
                    self.close_connection = True
                    sent, block = 0, payload + b"\0" * (1 << 16)
                    try:
                        while sent < ENDLESS_LIMIT:
                            self.wfile.write(block)
                            sent += len(block)
                    except OSError:  # the client hung up: what we want it to do
                        pass
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if fault.trickle:
                    try:
                        for i in range(len(payload)):
                            self.wfile.write(payload[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fault.trickle)
                    except OSError:
                        pass
                    return
                if fault.cut_after is not None:
                    self.wfile.write(payload[:fault.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if fault.stall:
                    half = len(payload) // 2
                    self.wfile.write(payload[:half])
                    self.wfile.flush()
                    time.sleep(fault.stall)
                    self.wfile.write(payload[half:])
                    return
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
