#!/usr/bin/env python3
"""How long a run takes to read the stored state of a gs:// output: one request at a time against
several at once (``store.GCS_READ_THREADS``).

    python bench/state_read.py [--files 600] [--days 40] [--latency-ms 40] [--threads 1 16]

A Cloud Storage emulator (gcp-storage-emulator, in memory) runs on 127.0.0.1 behind a proxy, also on
127.0.0.1, that holds every request for ``--latency-ms`` before passing it on: the round trip of a
real bucket, which the in-process emulator does not have. The output gets ``--files`` articles files
(one per source and day, 20 rows each, as scheduled runs leave them: Cloud Storage output is not
compacted) and as many dead-letter files; then, for each thread count, the script times what a run
reads before it fetches anything, ``load_prior``: the ids and content hashes of every file, the
near-duplicate entries of the files within the window, and the window's dead letters (pages
given up on): first without the logs under ``_state/seen/``, ``_state/neardup/`` and
``_state/failures/`` (``akhbar.transforms.seen``), as a run after they were deleted (every file
read, the window's near-duplicate entries computed from the stored bodies), then again with the
logs that read left (no file opened); and the dead letters alone (``PageFailures``, as ``akhbar
sources health`` reads them), without and with the log. Needs ``akhbar[test]`` (the
emulator). Contacts only 127.0.0.1.
"""
from __future__ import annotations

import argparse
import http.client
import http.server
import os
import socket
import threading
import time
from datetime import datetime, timedelta, timezone

for name in ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"):  # no metadata-server probe
    os.environ.setdefault(name, "127.0.0.1:9")
os.environ.setdefault("NO_GCE_CHECK", "true")

BUCKET = "akhbar-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def latency_proxy(target_port: int, latency_s: float) -> tuple[http.server.ThreadingHTTPServer, int]:
    """An HTTP proxy on 127.0.0.1 that waits ``latency_s`` before passing each request on."""
    lock = threading.Lock()  # the emulator answers one request at a time

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(latency_s)
            with lock:
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                conn.close()
            self.send_response(reply.status)
            for k, v in reply.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


def fill(output: str, files: int, now: datetime, days: int = 40) -> None:
    from akhbar.schemas.arrow import ARTICLES_SCHEMA, DEAD_LETTER_SCHEMA, article_row, dead_letter_row
    from akhbar.schemas.records import Article, DeadLetter
    from akhbar.transforms.sink import write_partition

    body = "نص الخبر عن اجتماع وزراء خارجية حلف شمال الأطلسي في بروكسل وبحث المساعدات لأوكرانيا. " * 8
    for f in range(files):
        day = (now - timedelta(days=f % days)).date().isoformat()
        source, run = f"s{f % 20}", f"r{f}"
        rows = [article_row(Article(article_id=f"{f:016x}{i:016x}", url=f"https://ex.com/{f}/{i}", source_id=source,
                                    title="t", body=f"{body} {f} {i}", published_at=None,
                                    fetched_at=now - timedelta(days=f % days), language="ar",
                                    content_hash=f"h{f}-{i}", topics=(), nato_score=0.0, ukraine_score=0.0,
                                    evidence=(), run_id=run)) for i in range(20)]
        write_partition(f"{output}/articles/dt={day}/source={source}", rows, ARTICLES_SCHEMA, run, "article_id")
        letters = [dead_letter_row(DeadLetter(url=f"https://ex.com/gone/{f % 50}/{i}", source_id=source, stage="fetch",
                                              reason="http_404", message="m", time=now - timedelta(days=f % days),
                                              run_id=run)) for i in range(3)]
        write_partition(f"{output}/dead_letter/dt={day}", letters, DEAD_LETTER_SCHEMA, run, "url")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=600)
    ap.add_argument("--days", type=int, default=40, help="days the files are spread over (the window is 30)")
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 16])
    args = ap.parse_args(argv)

    import logging

    from gcp_storage_emulator import server as emulator_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)  # it logs every absent object it is asked for

    from akhbar.transforms import seen, state, store

    port = free_port()
    emulator = emulator_server.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    emulator.start()
    proxy, proxy_port = latency_proxy(port, args.latency_ms / 1000)
    os.environ["GOOGLE_CLOUD_PROJECT"] = "akhbar-bench"
    output = f"gs://{BUCKET}/out"
    now = datetime.now(timezone.utc)
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"  # written without the delay
        t = time.perf_counter()
        fill(output, args.files, now, args.days)
        print(f"{args.files} articles files (20 rows each) and {args.files} dead-letter files written in "
              f"{time.perf_counter() - t:.1f} s (no delay)")
        os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{proxy_port}"  # read through the proxy
        print(f"each request held {args.latency_ms:g} ms by the proxy")
        logs = [store.join(output, *name) for name in (seen.SEEN_LOG, seen.ENTRY_LOG, seen.FAILURE_LOG)]
        for threads in args.threads:
            store.GCS_READ_THREADS = threads
            for path in [p for log in logs for p in store.list_files(log)]:  # every file read again
                store.delete(path)
            t = time.perf_counter()
            state.PageFailures(output, 30, 0, write_log=False).given_up(now=now)
            t_failures = time.perf_counter() - t
            t = time.perf_counter()
            prior = state.load_prior(output, now=now)
            t_prior = time.perf_counter() - t
            t = time.perf_counter()
            again = state.load_prior(output, now=now)  # with the logs just written: no file opened
            t_logged = time.perf_counter() - t
            assert again == prior
            t = time.perf_counter()
            given_up = state.PageFailures(output, 30, 0).given_up(prior.article_ids, now=now)
            t_failures_logged = time.perf_counter() - t
            print(f"{threads:>3} at once: load_prior {t_prior:6.1f} s reading every file, {t_logged:6.1f} s with "
                  f"the logs it left ({len(prior.article_ids)} ids, {len(prior.recent)} near-duplicate entries, "
                  f"{len(prior.given_up)} pages given up on); the dead letters alone {t_failures:5.1f} s, "
                  f"{t_failures_logged:5.1f} s with the log ({len(given_up)} pages given up on)")
    finally:
        proxy.shutdown()
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
