"""A small programmable HTTP server on 127.0.0.1 for misbehaving-web tests.

Routes map a path to a handler ``(request) -> Reply``; a handler can delay, lie about
lengths, redirect, or stream a body slowly. Every request is recorded.
"""
from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    chunk_delay: float = 0.0  # between 1 KiB chunks of the body
    abort: bool = False  # reset the connection instead of answering
    chunks: Iterable[bytes] | None = None  # a streamed body of unknown length (then the connection closes)


class RouteServer:
    def __init__(self):
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], Reply] | Reply] = {}
        self.hits: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()

    def route(self, path: str, reply: Reply | Callable[[BaseHTTPRequestHandler], Reply]) -> str:
        self.routes[path] = reply
        return self.url(path)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def count(self, path: str) -> int:
        return sum(1 for p, _ in self.hits if p == path)

    def __enter__(self) -> "RouteServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                with outer._lock:
                    outer.hits.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                route = outer.routes.get(self.path) or outer.routes.get(self.path.split("?")[0])
                reply = Reply(404, b"not found") if route is None else (route(self) if callable(route) else route)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.abort:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()  # RST: "connection reset by peer" for the client
                    return
                try:
                    self.send_response(reply.status)
                    if reply.chunks is not None:
                        for k, v in {**reply.headers, "Connection": "close"}.items():
                            self.send_header(k, v)
                        self.end_headers()
                        self.close_connection = True
                        for chunk in reply.chunks:
                            self.wfile.write(chunk)
                        return
                    headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                    for k, v in headers.items():
                        if v is not None:
                            self.send_header(k, v)
                    self.end_headers()
                    if reply.chunk_delay:
                        for i in range(0, len(reply.body), 1024):
                            self.wfile.write(reply.body[i:i + 1024])
                            self.wfile.flush()
                            time.sleep(reply.chunk_delay)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
