#!/usr/bin/env python3
"""What the stored state costs a run on a long-lived output: wall time, CPU and peak memory of
``akhbar run`` when the output already holds many articles and the feed brings one or none.

    python bench/state_scale.py --workdir /tmp/state-bench [--files 2000] [--rows 100] [--days 365]
                                [--runs 3]

The output is the synthetic one of ``bench/report_scale.py`` (``--files`` articles files of
``--rows`` rows, a source of 20 and a day of ``--days`` per file: a million rows with ``--files
10000``), written once into ``--workdir`` and copied for each measurement, so every measurement
starts from the same files. A one-page site on 127.0.0.1 serves a feed with one new article. Run 1
reads every file (the logs under ``_state/`` do not exist yet) and stores the article; the later
runs find the feed unchanged and fetch nothing: what a scheduled run costs when there is no news.
Each run is a fresh process, measured from start to exit (``getrusage`` of the process: CPU and
peak RSS). Contacts only 127.0.0.1.
"""
from __future__ import annotations

import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from report_scale import output_arguments, synthetic_output  # noqa: E402

SENTENCE = "قال مسؤولون في العاصمة إن المحادثات ستستأنف الأسبوع المقبل بحضور وفود من عدة دول"
PAGE = ("<html lang='ar'><head><meta charset='utf-8'><title>خبر جديد</title></head><body><article>"
        "<h1>خبر جديد</h1>" + "".join(f"<p>{SENTENCE} {i}.</p>" for i in range(6))
        + "</article></body></html>").encode("utf-8")

# one process per run: akhbar, and this wrapper that reports the child's own usage
MEASURE = """
import resource, subprocess, sys, time, json
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"exit": code, "wall_s": time.perf_counter() - t0, "cpu_s": r.ru_utime + r.ru_stime,
                  "peak_rss_mb": r.ru_maxrss / 1024}))
"""


def serve() -> tuple[http.server.ThreadingHTTPServer, str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            base = f"http://127.0.0.1:{self.server.server_address[1]}"
            if self.path == "/feed.xml":
                body = (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
                        f"<link>{base}/</link><description>d</description><item><title>خبر جديد</title>"
                        f"<link>{base}/news/1.html</link><pubDate>Mon, 30 Nov 2026 10:00:00 +0000</pubDate>"
                        f"</item></channel></rss>").encode("utf-8")
                kind = "application/rss+xml"
            elif self.path == "/news/1.html":
                body, kind = PAGE, "text/html; charset=utf-8"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    output_arguments(ap)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    for name in ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"):
        os.environ.setdefault(name, "127.0.0.1:9")
    os.environ.setdefault("NO_GCE_CHECK", "true")
    original = synthetic_output(args)
    output = args.workdir / "run-output"
    shutil.rmtree(output, ignore_errors=True)
    shutil.copytree(original, output)
    server, base = serve()
    sources = args.workdir / "sources.yaml"
    sources.write_text(f"sources:\n  - id: bench\n    feeds:\n      - {base}/feed.xml\n", encoding="utf-8")
    try:
        for run in range(1, args.runs + 1):
            cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "akhbar", "run", "--sources", str(sources),
                   "--output", str(output), "--allow-private-hosts", "--host-interval", "0",
                   "--ignore-feed-backoff"]
            r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            what = "reads every file, stores 1 article" if run == 1 else "feed unchanged, nothing fetched"
            print(f"run {run} ({what}) over {args.files * args.rows:,} stored rows: exit {r['exit']}, "
                  f"{r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MB")
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
