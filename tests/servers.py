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
from contextlib import contextmanager
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


class RawServer:
    """A TCP server on 127.0.0.1 whose ``handler(sock, path)`` writes whatever bytes it likes, at its
    own pace: header lines dripped one a second, interim 1xx responses, raw UTF-8 in headers.
    Each connection is served in its own thread; ``stop`` (set on exit) tells handlers to end."""

    def __init__(self, handler: Callable[[socket.socket, str], None]):
        self.handler = handler
        self.stop = threading.Event()
        self.connections = 0

    def __enter__(self) -> "RawServer":
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.base_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(sock,), daemon=True).start()

    def _serve(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                data = sock.recv(4096)
                if not data:
                    return
                request += data
            self.handler(sock, request.split(b" ", 2)[1].decode("latin-1"))
        except OSError:
            pass  # the client went away: what these tests provoke
        finally:
            sock.close()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self._thread.join(2)
        self._listener.close()


def drip(head: bytes, lines: Iterable[bytes], pause: float, stop: threading.Event):
    """A :class:`RawServer` handler sending ``head`` and then ``lines`` one every ``pause`` seconds,
    until ``stop`` is set: a server slow enough to trip no read timeout."""

    def handler(sock, path):
        sock.sendall(head)
        for line in lines:
            if stop.is_set():
                return
            sock.sendall(line)
            time.sleep(pause)
    return handler


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gcs_emulator(bucket: str, project: str = "akhbar-test"):
    """A Cloud Storage emulator (gcp-storage-emulator, in memory) on 127.0.0.1 with ``bucket``, and a
    client on it with anonymous credentials; ``STORAGE_EMULATOR_HOST`` points at it meanwhile, so
    akhbar's own gs:// code talks to it too."""
    import os

    from gcp_storage_emulator import server as emulator_server
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    port = free_port()
    server = emulator_server.create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    saved = {k: os.environ.get(k) for k in ("STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")}
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    os.environ["GOOGLE_CLOUD_PROJECT"] = project
    try:
        yield storage.Client(project=project, credentials=AnonymousCredentials())
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def article_reply(rec: dict) -> Reply:
    """An HTML page holding a sample record's title and paragraphs."""
    html = ("<html lang='ar'><body><article><h1>" + rec["title"] + "</h1>"
            + "".join(f"<p>{p}</p>" for p in rec["body"].split("\n")) + "</article></body></html>")
    return Reply(200, html.encode(), {"Content-Type": "text/html; charset=utf-8"})


def route_dated_feed(server: RouteServer, count: int, etag: str = '"v1"') -> str:
    """Serve ``count`` real Arabic articles at ``/n/<day>.html`` and an RSS feed listing them with
    one date each (day 1 the oldest) at ``/feed.xml``; the feed never changes and answers its
    ``etag`` with a 304. Returns the feed's URL."""
    from akhbar.sample.site import load_records

    recs = [r for r in load_records() if r["id"].startswith("ant-")][:count]
    items = ""
    for day, rec in enumerate(recs, start=1):
        path = f"/n/{day}.html"
        server.route(path, article_reply(rec))
        items += (f"<item><title>{rec['title']}</title><link>{server.url(path)}</link>"
                  f"<pubDate>{day:02d} Nov 2026 08:00:00 GMT</pubDate></item>")
    feed = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'

    def feed_handler(handler):
        if handler.headers.get("If-None-Match") == etag:
            return Reply(304, b"", {"ETag": etag})
        return Reply(200, feed.encode(), {"Content-Type": "application/rss+xml", "ETag": etag})

    return server.route("/feed.xml", feed_handler)
