"""Ready for a distributed runner: nothing tied to the launching process, the machine's disk or
the DirectRunner, and gs:// output that analysts read with pyarrow over Cloud Storage.

- `akhbar run` names its runner (the FnApiRunner) so Beam never tries to download Prism.
- Two SDK worker processes (`--direct_num_workers=2 --direct_running_mode=multi_processing`)
  write exactly the rows one worker writes: every step, side input and setting crossed a process
  boundary as pickled bytes. So does the portable runner (`--runner=PortableRunner`, the path
  Flink and Spark take): the job goes over the Job API to a job service in another process, and
  the steps run in an SDK worker started by a worker pool (`--environment_type=EXTERNAL`).
- The whole graph, serialized as a runner receives it, loads in a fresh Python process and every
  step's `setup()` works there, with the lexicon file gone from disk.
- A run to `gs://` on the emulator reads back with `pyarrow.dataset` over GCS (pyarrow's own
  GCS client) with the same rows as the local run; a second run adds none; nothing asks a cloud
  metadata server for credentials (a tripwire on 127.0.0.1 stands in for it).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from apache_beam.runners.portability import prism_runner

from akhbar.pipelines.batch import LOCAL_RUNNER, RunConfig, build_pipeline, new_run_id, with_runner
from akhbar.pipelines.cli import main
from akhbar.sample.site import expected, sources_yaml
from akhbar.schemas.sources import load_sources
from tests.servers import RouteServer
from tests.test_gcs import BUCKET, gcs  # noqa: F401 - the in-memory Cloud Storage emulator fixture

# Differ between two runs of the same site by design: fetch time, run id, the fetch-day partition.
VARIABLE = {"fetched_at", "run_id", "dt", "time", "detail", "message"}


def _rows(dataset: ds.Dataset) -> list[tuple]:
    table = dataset.to_table()
    names = sorted(n for n in table.column_names if n not in VARIABLE)
    return sorted(tuple(repr(row[n]) for n in names) for row in table.select(names).to_pylist())


def _local(path: str, what: str) -> ds.Dataset:
    return ds.dataset(os.path.join(path, what), partitioning="hive")


def _run(sample_site, tmp_path: Path, output: str, *beam_args: str) -> tuple[int, list]:
    """`akhbar run` on the sample site with Prism's entry point replaced by a recorder."""
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    prism_calls = []

    def no_prism(self, *args, **kwargs):
        prism_calls.append(args)
        raise RuntimeError("akhbar run must not try the Prism runner")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prism_runner.PrismRunner, "run_pipeline", no_prism)
        rc = main(["run", "--sources", str(sources), "--output", output, "--allow-private-hosts",
                   "--host-interval", "0", *beam_args])
    return rc, prism_calls


@pytest.fixture(scope="module")
def local_run(sample_site, tmp_path_factory):
    """One run of the sample site to a local folder, no runner named: the reference."""
    tmp = tmp_path_factory.mktemp("local-run")
    out = str(tmp / "out")
    rc, prism_calls = _run(sample_site, tmp, out)
    assert rc == 0
    return {"output": out, "prism_calls": prism_calls,
            "articles": _rows(_local(out, "articles")), "dead": _rows(_local(out, "dead_letter"))}


def test_the_runner_is_named_when_the_user_names_none():
    assert with_runner(None) == [f"--runner={LOCAL_RUNNER}"] == with_runner([])
    assert with_runner(["--direct_num_workers=2"]) == ["--direct_num_workers=2", "--runner=FnApiRunner"]
    for given in (["--runner=DataflowRunner"], ["--runner", "DirectRunner"], ["--runner=PortableRunner"]):
        assert with_runner(given) == given


def test_a_job_description_only_run_is_recognised():
    from akhbar.pipelines.batch import describes_only

    assert describes_only(["--runner=DataflowRunner", "--template_location=gs://b/templates/t.json"])
    assert not describes_only(["--runner=DataflowRunner", "--temp_location=gs://b/tmp"])
    assert not describes_only(None)


def test_a_run_never_tries_prism(local_run, sample_site):
    truth = expected(sample_site.base_url)
    assert local_run["prism_calls"] == []
    assert len(local_run["articles"]) == len(truth["articles"]) == 15

    # control: the same recorder does catch Beam's DirectRunner reaching for Prism
    import apache_beam as beam

    calls = []

    def no_prism(self, *args, **kwargs):
        calls.append(args)
        raise RuntimeError("no Prism in tests")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prism_runner.PrismRunner, "run_pipeline", no_prism)
        with beam.Pipeline(runner="DirectRunner") as p:
            _ = p | beam.Create([1, 2]) | beam.Map(lambda x: x + 1)
    assert len(calls) == 1


def test_two_worker_processes_write_what_one_writes(local_run, sample_site, tmp_path, capsys):
    out = str(tmp_path / "out")
    rc, prism_calls = _run(sample_site, tmp_path, out, "--direct_num_workers=2",
                           "--direct_running_mode=multi_processing")
    assert rc == 0 and prism_calls == []
    assert "wrote 15 article rows" in capsys.readouterr().out
    assert _rows(_local(out, "articles")) == local_run["articles"]
    assert _rows(_local(out, "dead_letter")) == local_run["dead"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args} exited with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture()
def portable_services(tmp_path):
    """Beam's Python job service and an SDK worker pool, each its own process on 127.0.0.1:
    the Job API and the EXTERNAL worker environment that Flink and Spark use, without a JVM."""
    # the worker pool starts SDK workers as `python` from PATH: this interpreter's
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    job_port, pool_port = _free_port(), _free_port()
    logs = [open(tmp_path / "job-service.log", "wb"), open(tmp_path / "worker-pool.log", "wb")]
    procs = [subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                               "--port", str(job_port)], env=env, stdout=subprocess.DEVNULL, stderr=logs[0]),
             subprocess.Popen([sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                               "--service_port", str(pool_port)], env=env, stdout=subprocess.DEVNULL, stderr=logs[1])]
    try:
        _wait_for_port(job_port, procs[0])
        _wait_for_port(pool_port, procs[1])
        yield job_port, pool_port
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for log in logs:
            log.close()


def test_the_portable_runner_writes_what_the_local_runner_writes(local_run, sample_site, tmp_path,
                                                                 portable_services):
    job_port, pool_port = portable_services
    out = str(tmp_path / "out")
    rc, prism_calls = _run(sample_site, tmp_path, out, "--runner=PortableRunner",
                           f"--job_endpoint=127.0.0.1:{job_port}", "--environment_type=EXTERNAL",
                           f"--environment_config=127.0.0.1:{pool_port}")
    assert rc == 0 and prism_calls == []
    assert _rows(_local(out, "articles")) == local_run["articles"]
    assert _rows(_local(out, "dead_letter")) == local_run["dead"]


_LOAD_GRAPH = r"""
import json, sys
from apache_beam.internal import pickler
from apache_beam.portability import common_urns, python_urns
from apache_beam.portability.api import beam_runner_api_pb2 as pb

proto = pb.Pipeline.FromString(open(sys.argv[1], "rb").read())
dofns, combinefns = [], 0
for t in proto.components.transforms.values():
    if t.spec.urn == common_urns.primitives.PAR_DO.urn:
        payload = pb.ParDoPayload.FromString(t.spec.payload)
        if payload.do_fn.urn != python_urns.PICKLED_DOFN_INFO:
            continue  # Beam's own stateless DoFns, named by URN
        fn, args, kwargs, _, _ = pickler.loads(payload.do_fn.payload)
        dofns.append(fn)
    elif t.spec.urn == common_urns.composites.COMBINE_PER_KEY.urn:
        payload = pb.CombinePayload.FromString(t.spec.payload)
        pickler.loads(payload.combine_fn.payload)
        combinefns += 1
steps = [fn for fn in dofns if type(fn).__module__.startswith("akhbar.")]
for fn in steps:
    fn.setup()  # clients, pools, the lexicon: everything a worker builds for itself
classify = [fn for fn in steps if type(fn).__name__ == "Classify"]
print(json.dumps({
    "dofns": len(dofns), "combinefns": combinefns, "steps": sorted({type(fn).__name__ for fn in steps}),
    "lexicon_terms": [len(fn.lexicon.topics) for fn in classify],
}))
"""


def test_the_graph_loads_and_sets_up_in_a_fresh_process(sample_site, tmp_path):
    """What a remote worker does with our steps, with nothing of this process and no lexicon file."""
    import apache_beam as beam
    from akhbar.transforms.classify import _default_path

    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text(_default_path().read_text(encoding="utf-8"), encoding="utf-8")
    cfg = RunConfig(sources=tuple(load_sources(str(sources))), output=f"gs://{BUCKET}/graph", run_id=new_run_id(),
                    lexicon=str(lexicon))
    p = beam.Pipeline(options=beam.options.pipeline_options.PipelineOptions(with_runner([])))
    build_pipeline(p, cfg)
    graph = tmp_path / "pipeline.pb"
    graph.write_bytes(p.to_runner_api().SerializeToString())
    shutil.rmtree(p.local_tempdir, ignore_errors=True)  # Beam removes it only in run()
    lexicon.unlink()  # a worker elsewhere never had it

    done = subprocess.run([sys.executable, "-c", _LOAD_GRAPH, str(graph)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"PollFeed", "FetchPages", "ExtractArticles", "Classify", "SkipStored",
            "DropExactDuplicates"} <= set(loaded["steps"])
    assert loaded["lexicon_terms"] and all(n >= 2 for n in loaded["lexicon_terms"])
    assert loaded["dofns"] >= 20 and loaded["combinefns"] >= 1


def test_gcs_output_reads_back_over_gcs_like_the_local_run(gcs, local_run, sample_site, tmp_path,  # noqa: F811
                                                           monkeypatch, capsys):
    import google.auth
    import google.auth.compute_engine._metadata as gce_metadata
    import google.auth.exceptions
    import pyarrow.fs as pafs

    emulator = os.environ["STORAGE_EMULATOR_HOST"].removeprefix("http://")
    prefix = f"{BUCKET}/accept/out"
    with RouteServer() as metadata:
        # A stand-in for the metadata server: anything looking for cloud credentials ends here.
        host = metadata.base_url.removeprefix("http://")
        for var in ("GCE_METADATA_HOST", "GCE_METADATA_ROOT", "GCE_METADATA_IP"):
            monkeypatch.setenv(var, host)
        monkeypatch.delenv("NO_GCE_CHECK", raising=False)
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        for var in ("HOME", "CLOUDSDK_CONFIG"):  # no gcloud credentials file to find either
            monkeypatch.setenv(var, str(tmp_path / "home"))
        # google-auth reads these two at import: point it at the tripwire and let it look
        monkeypatch.setattr(gce_metadata, "_GCE_METADATA_HOST", host)
        monkeypatch.setattr(gce_metadata, "_NO_GCE_CHECK", False)

        rc, prism_calls = _run(sample_site, tmp_path, f"gs://{prefix}")
        assert rc == 0 and prism_calls == []
        assert "wrote 15 article rows" in capsys.readouterr().out

        # pyarrow's own GCS client (not google-cloud-storage) on the emulator, anonymous
        fs = pafs.GcsFileSystem(anonymous=True, scheme="http", endpoint_override=emulator,
                                retry_time_limit=timedelta(seconds=5))
        articles = ds.dataset(f"{prefix}/articles", filesystem=fs, partitioning="hive")
        assert all(f.endswith(".parquet") and "/dt=" in f and "/source=" in f for f in articles.files)
        assert articles.schema.equals(_local(local_run["output"], "articles").schema)
        assert _rows(articles) == local_run["articles"]
        dead = ds.dataset(f"{prefix}/dead_letter", filesystem=fs, partitioning="hive")
        assert _rows(dead) == local_run["dead"]

        rc, _ = _run(sample_site, tmp_path, f"gs://{prefix}")
        assert rc == 0 and "wrote 0 article rows" in capsys.readouterr().out
        again = ds.dataset(f"{prefix}/articles", filesystem=fs, partitioning="hive")
        assert sorted(again.files) == sorted(articles.files)
        assert _rows(again) == local_run["articles"]

        assert metadata.hits == []  # nothing asked for credentials

        # The tripwire works: google-auth's probe and pyarrow's credential lookup both land on it
        # when they are allowed to look (pyarrow ignores NO_GCE_CHECK; only anonymous=True stops it).
        with pytest.raises(google.auth.exceptions.DefaultCredentialsError):
            google.auth.default()
        probed = len(metadata.hits)
        assert probed >= 1
        named = pafs.GcsFileSystem(scheme="http", endpoint_override=emulator, retry_time_limit=timedelta(seconds=2))
        with pytest.raises(OSError):
            named.get_file_info(pafs.FileSelector(prefix, recursive=True))
        assert any(path.startswith("/computeMetadata/") for path, _ in metadata.hits[probed:])


def test_dataflow_refuses_paths_on_this_machine(tmp_path, sample_site, capsys):
    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    dataflow = ["--runner=DataflowRunner", "--project=p", "--region=europe-west1", "--temp_location=gs://b/tmp"]
    assert main(["run", "--sources", str(sources), "--output", str(tmp_path / "out"), *dataflow]) == 2
    assert "--output" in capsys.readouterr().err
    assert main(["run", "--sources", str(sources), "--output", "gs://b/out", "--classifier", "model.joblib",
                 *dataflow]) == 2
    assert "--classifier" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "out"), "--sources", str(sources), *dataflow]) == 2
    assert not (tmp_path / "out").exists()


def test_lexicon_and_model_files_can_live_on_gcs(gcs):  # noqa: F811
    from akhbar.transforms import store
    from akhbar.transforms.classify import _default_path, load_lexicon

    text = _default_path().read_text(encoding="utf-8")
    store.write_atomic(f"gs://{BUCKET}/conf/lexicon.yaml", text.encode("utf-8"))
    def terms(lexicon):
        return [(t.name, t.threshold, t.entries) for t in lexicon.topics]

    assert terms(load_lexicon(f"gs://{BUCKET}/conf/lexicon.yaml")) == terms(load_lexicon())
    with pytest.raises(ValueError, match="cannot read lexicon"):
        load_lexicon(f"gs://{BUCKET}/conf/missing.yaml")
    pytest.importorskip("sklearn")
    from akhbar.transforms.model import load_model

    with pytest.raises(ValueError, match="no such model file"):
        load_model(f"gs://{BUCKET}/conf/missing.joblib")
    store.write_atomic(f"gs://{BUCKET}/conf/not-a-model.joblib", b"not a model")
    with pytest.raises(ValueError, match="not a readable akhbar model"):
        load_model(f"gs://{BUCKET}/conf/not-a-model.joblib")


def test_run_checks_a_gcs_model_by_reading_it(gcs, tmp_path, sample_site, capsys):  # noqa: F811
    """`akhbar run --classifier gs://…` reads the object (no local-file check in the way)."""
    pytest.importorskip("sklearn")
    from akhbar.transforms import store

    sources = tmp_path / "sources.yaml"
    sources.write_text(sources_yaml(sample_site.base_url), encoding="utf-8")
    store.write_atomic(f"gs://{BUCKET}/conf/junk.joblib", b"not a model")
    assert main(["run", "--sources", str(sources), "--output", str(tmp_path / "out"),
                 "--classifier", f"gs://{BUCKET}/conf/junk.joblib"]) == 2
    assert "not a readable akhbar model" in capsys.readouterr().err
