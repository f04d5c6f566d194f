#!/usr/bin/env python3
"""Throughput of ``akhbar run`` against the floor set by extraction itself, in one run.

Builds a fixture site of ``--articles`` pages with ``eval/tools/make_site.py``, serves it on
127.0.0.1 from a separate process (so the server never shares an interpreter or a GIL with what is
measured; see :func:`serve_main` for why not with ``make_site.py serve``), and measures on the same pages, one configuration after the other:

- ``bare-1``: a sequential loop, HTTP GET + ``trafilatura.extract`` — the floor for one core;
- ``bare-2``: the same work on ``multiprocessing.Pool(2)`` — the floor for two cores;
- ``akhbar-1``: ``akhbar run`` (batch, FnApiRunner) with one worker;
- ``akhbar-2``: two workers, ``--direct_running_mode=multi_processing``;
- ``akhbar-2t``: two workers, ``multi_threading`` (optional);
- ``newspaper4k``: a sequential loop with newspaper4k's extraction, if it is installed (the peer).

Every configuration runs as its own subprocess, timed from start to exit (interpreter start and
imports included, for the bare loops too). Reported per configuration: pages/s, the ratio to the
matching floor, CPU seconds per page of the whole process tree (from ``getrusage`` of the reaped
children), CPU per page by stage (akhbar: the ``<stage>.cpu_us`` counters each step keeps with
``time.thread_time``; bare: fetch and extract timed the same way), peak RSS (the largest single
process and the largest sum over the process tree, sampled from ``/proc`` every 0.1 s) and the
load average before and after (the machine is shared: compare figures of one run only).

    python bench/perf.py --eval-dir ../shared/eval [--articles 5000] [--configs bare-1,akhbar-1,...]
        [--rounds N] [--workdir DIR] [--json FILE] [--docs docs/performance.md]

``--docs`` saves the result as ``bench/results/perf-<articles>.json`` and rewrites the table of
``docs/performance.md`` from every saved result (the one command that regenerates it). Only
127.0.0.1 is contacted.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from e2e_eval import free_port, wait_for  # noqa: E402
from proctree import tree_rss_kb  # noqa: E402

ALL_CONFIGS = ("bare-1", "bare-2", "akhbar-1", "akhbar-2", "akhbar-2t", "newspaper4k")
DEFAULT_CONFIGS = ("bare-1", "bare-2", "akhbar-1", "akhbar-2", "newspaper4k")
FLOOR = {"bare-1": None, "bare-2": None, "akhbar-1": "bare-1", "akhbar-2": "bare-2", "akhbar-2t": "bare-2",
         "newspaper4k": "bare-1"}
GCE_OFF = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
           "GCE_METADATA_ROOT": "127.0.0.1:9"}
MARK_BEGIN, MARK_END = "<!-- perf-table:begin -->", "<!-- perf-table:end -->"


# ---------------------------------------------------------------------------------------------
# The bare loops (run in their own subprocess: ``perf.py _bare URLS PROCS``)
# ---------------------------------------------------------------------------------------------

def _bare_setup():
    global _HTTP
    import urllib3

    _HTTP = urllib3.PoolManager(maxsize=4, retries=False)


def _bare_one(url: str) -> tuple[int, float, float]:
    """GET + trafilatura.extract of one page: (extracted?, fetch CPU s, extract CPU s)."""
    import trafilatura

    t0 = time.thread_time()
    body = _HTTP.request("GET", url).data
    t1 = time.thread_time()
    text = trafilatura.extract(body, url=url)
    return int(bool(text)), t1 - t0, time.thread_time() - t1


def _peer_one(url: str) -> tuple[int, float, float]:
    """GET + newspaper4k's parse of one page (language ar)."""
    from newspaper import Article

    t0 = time.thread_time()
    html = _HTTP.request("GET", url).data.decode("utf-8", "replace")
    t1 = time.thread_time()
    a = Article(url, language="ar", fetch_images=False)
    a.download(input_html=html)
    a.parse()
    return int(bool(a.text)), t1 - t0, time.thread_time() - t1


def bare_main(url_file: str, procs: int, peer: bool) -> None:
    urls = Path(url_file).read_text(encoding="utf-8").split()
    one = _peer_one if peer else _bare_one
    t0 = time.perf_counter()
    if procs == 1:
        _bare_setup()
        results = [one(u) for u in urls]
    else:
        import multiprocessing

        with multiprocessing.Pool(procs, initializer=_bare_setup) as pool:
            results = list(pool.imap_unordered(one, urls, chunksize=8))
    loop_s = time.perf_counter() - t0
    print(json.dumps({"pages": len(urls), "extracted": sum(r[0] for r in results), "loop_s": loop_s,
                      "stage_cpu_s": {"fetch": sum(r[1] for r in results), "extract": sum(r[2] for r in results)}}))


# ---------------------------------------------------------------------------------------------
# The fixture server (its own process: ``perf.py _serve DIR PORT``)
# ---------------------------------------------------------------------------------------------

def serve_main(root: str, port: int) -> None:
    """Serve a make_site folder on 127.0.0.1 with the content types it recorded.

    Unlike ``make_site.py serve`` (a listen backlog of 5, one connection per request), this one
    keeps connections alive (HTTP/1.1) and accepts up to 1,024 pending connections: with eight
    fetches in flight, a full backlog drops connection attempts, which the client's kernel
    retries only after a second — time the benchmark would charge to the pipeline.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    base = Path(root).resolve()
    types = json.loads((base / "_headers.json").read_text())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out as two writes: with Nagle's algorithm on a kept-alive
        # connection the body would wait for the client's delayed ACK (40 ms a page)
        disable_nagle_algorithm = True

        def do_GET(self):
            path = self.path.split("?", 1)[0]
            target = (base / path.lstrip("/")).resolve()
            if path not in types or not target.is_relative_to(base) or not target.is_file():
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", types[path])
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True
        allow_reuse_address = True

    with Server(("127.0.0.1", port), Handler) as httpd:
        httpd.serve_forever()


# ---------------------------------------------------------------------------------------------
# Measuring a subprocess tree
# ---------------------------------------------------------------------------------------------

class TreeSampler(threading.Thread):
    """Peak RSS of a process and its descendants: the largest single process and the largest sum."""

    def __init__(self, pid: int, every: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.max_single_kb = self.max_tree_kb = 0
        self.max_procs = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            rss = tree_rss_kb(self.pid)
            self.max_single_kb = max(self.max_single_kb, *rss)
            self.max_tree_kb = max(self.max_tree_kb, sum(rss))
            self.max_procs = max(self.max_procs, len(rss))
            self.done.wait(self.every)


def _proc_cpu_s(pid: int) -> float:
    """utime + stime of a live process (the fixture server), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def measure(cmd: list[str], server_pid: int, env: dict) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0 = _proc_cpu_s(server_pid)
    load0 = load()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "exit_code": proc.returncode, "wall_s": round(wall, 2),
        "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
        "server_cpu_s": round(_proc_cpu_s(server_pid) - server0, 2),
        "peak_rss_mb_single": round(sampler.max_single_kb / 1024, 1),
        "peak_rss_mb_tree": round(sampler.max_tree_kb / 1024, 1),
        "max_processes": sampler.max_procs,
        "load_before": load0, "load_after": load(),
        "stdout": out, "stderr": err,
    }


# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

AKHBAR_ARGS = {
    "akhbar-1": ["--direct_num_workers=1"],
    "akhbar-2": ["--direct_num_workers=2", "--direct_running_mode=multi_processing"],
    "akhbar-2t": ["--direct_num_workers=2", "--direct_running_mode=multi_threading"],
}


def run_config(name: str, work: Path, site: Path, urls_file: Path, n_pages: int, server_pid: int,
               extra: list[str]) -> dict:
    env = {**os.environ, **GCE_OFF}
    if name.startswith("bare") or name == "newspaper4k":
        cmd = [sys.executable, str(Path(__file__).resolve()), "_bare", str(urls_file),
               "2" if name == "bare-2" else "1"] + (["peer"] if name == "newspaper4k" else [])
        r = measure(cmd, server_pid, env)
        if r["exit_code"] == 0:
            inner = json.loads(r["stdout"].strip().splitlines()[-1])
            r["pages"], r["extracted"] = inner["pages"], inner["extracted"]
            r["loop_s"] = round(inner["loop_s"], 2)
            r["stage_cpu_ms_per_page"] = {k: round(1000 * v / max(1, inner["pages"]), 2)
                                          for k, v in inner["stage_cpu_s"].items()}
    else:
        out = work / f"out-{name}"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "akhbar", "run", "--sources", str(site / "sources.yaml"), "--output", str(out),
               "--allow-private-hosts", "--host-interval", "0", "--host-concurrency", "64",
               "--runner", "FnApiRunner", *AKHBAR_ARGS[name], *extra]
        r = measure(cmd, server_pid, env)
        reports = sorted((out / "_reports").glob("run-*.json")) if (out / "_reports").is_dir() else []
        if reports:
            rep = json.loads(reports[-1].read_text(encoding="utf-8"))
            counters = rep.get("counters", {})
            r["pages"] = n_pages
            r["fetched"] = counters.get("fetch.pages", 0)
            r["extracted"] = counters.get("extract.articles", 0)
            r["articles_written"] = rep.get("articles_written")
            r["dead_letters"] = rep.get("dead_letters")
            r["run_seconds"] = rep.get("seconds")
            r["stage_cpu_ms_per_page"] = {k[:-len(".cpu_us")]: round(v / 1000 / max(1, n_pages), 2)
                                          for k, v in sorted(counters.items()) if k.endswith(".cpu_us")}
        shutil.rmtree(out, ignore_errors=True)
    pages = r.get("pages") or 0
    r["pages_per_s"] = round(pages / r["wall_s"], 1) if r["exit_code"] == 0 and pages else None
    r["cpu_ms_per_page"] = round(1000 * r["cpu_s"] / max(1, pages), 2) if pages else None
    if r["exit_code"] != 0:
        r["error_tail"] = (r["stderr"] or "")[-3000:]
    r.pop("stdout")
    r.pop("stderr")
    return r


def peer_available() -> bool:
    try:
        import newspaper  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means: not measured
        return False
    return True


# ---------------------------------------------------------------------------------------------
# The table in docs/performance.md
# ---------------------------------------------------------------------------------------------

def _fmt(v, nd=1):
    return "–" if v is None else (f"{v:,.{nd}f}" if isinstance(v, float) else f"{v:,}")


def render_table(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"**{res['articles']:,} pages** — measured {res['when']} on {res['machine']}, "
                     f"{res['rounds']} round(s), best wall time of each configuration kept; "
                     f"load average at start {res['load_start']}.\n")
        if res.get("note"):
            lines.append(f"{res['note']}\n")
        lines.append("| configuration | wall s | pages/s | × floor | pages with text | CPU ms/page (tree) "
                     "| CPU ms/page by stage | peak RSS MB (largest process / tree) | load (1 min) before → after |")
        lines.append("|---|---:|---:|---:|---:|---:|---|---:|---|")
        for name, r in res["configs"].items():
            stage = dict(r.get("stage_cpu_ms_per_page") or {})
            if name.startswith("akhbar") and stage and r.get("cpu_ms_per_page") is not None:
                # what no step accounts for: start-up, Beam's own work, the runner's shuffles
                stage["rest"] = r["cpu_ms_per_page"] - sum(stage.values())
            stages = ", ".join(f"{k} {v:.2f}" for k, v in stage.items())
            ratio = r.get("ratio_to_floor")
            lines.append(
                f"| {name} | {_fmt(r.get('wall_s'), 1)} | {_fmt(r.get('pages_per_s'))} | "
                f"{'–' if ratio is None else f'{ratio:.2f}'} ({FLOOR.get(name) or 'floor'}) | "
                f"{_fmt(r.get('extracted'))} | {_fmt(r.get('cpu_ms_per_page'), 2)} | {stages or '–'} | "
                f"{_fmt(r.get('peak_rss_mb_single'))} / {_fmt(r.get('peak_rss_mb_tree'))} | "
                f"{(r.get('load_before') or ['–'])[0]} → {(r.get('load_after') or ['–'])[0]} |")
        for name, tail in (res.get("failed") or {}).items():
            lines.append(f"\n{name} failed: `{' '.join(tail)[:300]}`")
        if res.get("paired"):
            pairs = "; ".join(
                f"{name} / {p['floor']}: {', '.join(f'{v:.2f}' for v in p['pages_per_s_ratio'])} "
                f"(CPU a page: {', '.join(f'{v:.2f}' for v in p['cpu_per_page_ratio'])})"
                for name, p in res["paired"].items())
            lines.append(f"\nRound by round, against the floor measured in the same round: {pairs}.")
        if res.get("speedup_akhbar_2_over_1") is not None:
            lines.append(f"\nSpeed-up with 2 workers: akhbar {res['speedup_akhbar_2_over_1']:.2f}×, "
                         f"bare Pool(2) {res.get('speedup_bare_2_over_1', 0):.2f}× (same run).")
        lines.append("")
    return "\n".join(lines)


def paired_ratios(all_rounds: dict[str, list[dict]]) -> dict[str, dict]:
    """Each configuration against its floor measured in the same round: pages/s over the floor's,
    and the floor's CPU per page over the configuration's, one figure per round. The best-of
    figures of the table pair runs from different rounds; on a VM whose speed drifts between
    rounds, these pairs of neighbours are the steadier comparison."""
    out = {}
    for name, runs in all_rounds.items():
        floor_runs = all_rounds.get(FLOOR.get(name) or "")
        if not floor_runs:
            continue
        speed, cpu = [], []
        for r, f in zip(runs, floor_runs):
            if r.get("pages_per_s") and f.get("pages_per_s"):
                speed.append(round(r["pages_per_s"] / f["pages_per_s"], 3))
            if r.get("cpu_ms_per_page") and f.get("cpu_ms_per_page"):
                cpu.append(round(f["cpu_ms_per_page"] / r["cpu_ms_per_page"], 3))
        out[name] = {"floor": FLOOR[name], "pages_per_s_ratio": speed, "cpu_per_page_ratio": cpu}
    return out


def update_docs(doc: Path, results_dir: Path) -> None:
    results = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(results_dir.glob("perf-*.json"))]
    results.sort(key=lambda r: (r["articles"], r["when"]))
    table = render_table(results)
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"# Performance\n\n{MARK_BEGIN}\n{MARK_END}\n"
    head, rest = text.split(MARK_BEGIN, 1)
    _, tail = rest.split(MARK_END, 1)
    doc.write_text(f"{head}{MARK_BEGIN}\n{table}\n{MARK_END}{tail}", encoding="utf-8")


# ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eval-dir", required=True, help="path to shared/eval")
    ap.add_argument("--articles", type=int, default=5000, help="pages on the fixture site (default 5000)")
    ap.add_argument("--configs", default=",".join(DEFAULT_CONFIGS),
                    help=f"comma-separated, from {', '.join(ALL_CONFIGS)} (default: all but akhbar-2t)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every configuration this many times, interleaved; keep the fastest of each")
    ap.add_argument("--workdir", help="keep the site here (default: a temporary folder, removed)")
    ap.add_argument("--json", help="write the result as JSON to this file")
    ap.add_argument("--docs", help="save the result under bench/results/ and regenerate this file's table")
    args, extra = ap.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    configs = [c for c in args.configs.split(",") if c]
    unknown = set(configs) - set(ALL_CONFIGS)
    if unknown:
        ap.error(f"unknown configurations: {', '.join(sorted(unknown))}")
    if "newspaper4k" in configs and not peer_available():
        print("perf: newspaper4k is not installed (pip install 'akhbar[bench]'); the peer is skipped",
              file=sys.stderr)
        configs.remove("newspaper4k")
    ev = Path(args.eval_dir)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="akhbar-perf-"))
    work.mkdir(parents=True, exist_ok=True)
    site = work / f"site-{args.articles}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    if site.exists():
        shutil.rmtree(site)
    subprocess.run([sys.executable, str(ev / "tools" / "make_site.py"), "build", "--articles",
                    str(ev / "articles" / "ant_multisource_v2.1.jsonl.gz"), "--limit", str(args.articles),
                    "--out", str(site), "--base-url", base], check=True, stdout=subprocess.DEVNULL)
    with open(site / "manifest.jsonl", encoding="utf-8") as f:
        urls = [json.loads(line)["url"] for line in f]
    urls_file = work / f"urls-{args.articles}.txt"
    urls_file.write_text("\n".join(urls), encoding="utf-8")
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "_serve", str(site), str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"articles": len(urls), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}",
              "rounds": args.rounds, "load_start": load(), "extra_args": extra, "configs": {}, "all_rounds": {}}
    try:
        wait_for(port)
        for rnd in range(args.rounds):
            for name in configs:
                r = run_config(name, work, site, urls_file, len(urls), server.pid, extra)
                print(f"[round {rnd + 1}] {name}: {json.dumps(r)}", file=sys.stderr, flush=True)
                result["all_rounds"].setdefault(name, []).append(r)
                best = result["configs"].get(name)
                if r["exit_code"] == 0 and (best is None or r["wall_s"] < best["wall_s"]):
                    result["configs"][name] = r
    finally:
        server.terminate()
        server.wait()
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    cfgs = result["configs"]
    result["failed"] = {name: (runs[-1].get("error_tail") or "").strip().splitlines()[-1:] for name, runs
                        in result["all_rounds"].items() if name not in cfgs}
    for name, r in cfgs.items():
        floor = cfgs.get(FLOOR.get(name) or "")
        if floor and r.get("pages_per_s") and floor.get("pages_per_s"):
            r["ratio_to_floor"] = round(r["pages_per_s"] / floor["pages_per_s"], 3)
    result["paired"] = paired_ratios(result["all_rounds"])
    for a, b, key in (("akhbar-2", "akhbar-1", "speedup_akhbar_2_over_1"), ("bare-2", "bare-1", "speedup_bare_2_over_1")):
        if cfgs.get(a, {}).get("pages_per_s") and cfgs.get(b, {}).get("pages_per_s"):
            result[key] = round(cfgs[a]["pages_per_s"] / cfgs[b]["pages_per_s"], 3)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text, encoding="utf-8")
    if args.docs:
        results_dir = HERE / "results"
        results_dir.mkdir(exist_ok=True)
        saved = dict(result)
        saved.pop("all_rounds")
        (results_dir / f"perf-{result['articles']}.json").write_text(
            json.dumps(saved, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        update_docs(Path(args.docs), results_dir)
    failed = [n for n in configs if n not in cfgs]
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve_main(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    if len(sys.argv) > 1 and sys.argv[1] == "_bare":
        bare_main(sys.argv[2], int(sys.argv[3]), peer=len(sys.argv) > 4 and sys.argv[4] == "peer")
        sys.exit(0)
    for k, v in GCE_OFF.items():
        os.environ.setdefault(k, v)
    sys.exit(main())
