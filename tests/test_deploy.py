"""The deploy/ examples parse, name real options, and the template entry point maps its parameters."""
import argparse
import importlib.util
import json
import py_compile
import re
from pathlib import Path

import pytest
import yaml

from akhbar.pipelines.cli import _parser

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
METADATA = DEPLOY / "dataflow" / "metadata.json"


def _run_options() -> dict[str, argparse.Action]:
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {opt: a for a in sub.choices["run"]._actions for opt in a.option_strings}


def _template_main():
    spec = importlib.util.spec_from_file_location("akhbar_template_main", DEPLOY / "dataflow" / "main.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _metadata() -> dict:
    return json.loads(METADATA.read_text(encoding="utf-8"))


def test_every_template_parameter_is_an_akhbar_run_option_with_a_regex():
    doc = _metadata()
    assert doc["name"] and doc["description"] and doc["streaming"] is False
    options = _run_options()
    names = [p["name"] for p in doc["parameters"]]
    assert len(names) == len(set(names))
    for p in doc["parameters"]:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", p["name"]), p["name"]
        assert "--" + p["name"].replace("_", "-") in options, p["name"]
        assert p["label"] and p["helpText"] and p["regexes"], p["name"]
        for rx in p["regexes"]:
            re.compile(rx)
    required = {p["name"] for p in doc["parameters"] if not p.get("isOptional")}
    assert required == {"sources", "output"}
    assert "allow_private_hosts" not in names  # never on a cloud runner


@pytest.mark.parametrize("name,good,bad", [
    ("sources", "gs://my-bucket/akhbar/sources.yaml", "/etc/sources.yaml"),
    ("output", "gs://my-bucket/akhbar/out", "s3://b/out"),
    ("fetch_concurrency", "8", "-1"),
    ("host_interval", "1.5", "fast"),
    ("ignore_feed_backoff", "true", "maybe"),
    ("give_up_after", "1.5", "-1"),
])
def test_template_regexes_accept_and_refuse(name, good, bad):
    (p,) = [p for p in _metadata()["parameters"] if p["name"] == name]
    assert all(re.fullmatch(rx, good) for rx in p["regexes"])
    assert not all(re.fullmatch(rx, bad) for rx in p["regexes"])


def test_template_entry_point_translates_parameters():
    mod = _template_main()
    names = mod.template_parameters(str(METADATA))
    ours, beam = mod.translate(
        ["--sources=gs://b/s.yaml", "--output=gs://b/out", "--fetch_concurrency=4", "--ignore_feed_backoff=true",
         "--runner=DataflowRunner", "--project=p", "--temp_location=gs://b/tmp"], names)
    assert ours == ["--sources=gs://b/s.yaml", "--output=gs://b/out", "--fetch-concurrency=4", "--ignore-feed-backoff"]
    assert beam == ["--runner=DataflowRunner", "--project=p", "--temp_location=gs://b/tmp"]
    assert mod.translate(["--ignore_feed_backoff=false"], names) == ([], [])
    # what it produces is accepted by `akhbar run`
    args, rest = _parser().parse_known_args(["run", *ours, *beam])
    assert args.fetch_concurrency == 4 and args.ignore_feed_backoff and args.output == "gs://b/out"
    assert rest == beam


def test_dockerfile_uses_beam_sdk_and_launcher_and_installs_the_package():
    text = (DEPLOY / "dataflow" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM apache/beam_python3\.11_sdk:", text, re.M)
    assert "template-launcher-base" in text and "FLEX_TEMPLATE_PYTHON_PY_FILE=/template/main.py" in text
    assert "[gcp]" in text and "python -m build --wheel" in text
    for script in ("build.sh", "run.sh"):
        body = (DEPLOY / "dataflow" / script).read_text(encoding="utf-8")
        assert body.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in body


def test_scheduler_body_launches_the_template_with_known_parameters():
    body = json.loads((DEPLOY / "scheduler" / "launch-body.json").read_text(encoding="utf-8"))
    launch = body["launchParameter"]
    declared = {p["name"] for p in _metadata()["parameters"]}
    assert set(launch["parameters"]) <= declared and {"sources", "output"} <= set(launch["parameters"])
    assert launch["containerSpecGcsPath"].startswith("gs://")
    assert launch["environment"]["tempLocation"].startswith("gs://")
    script = (DEPLOY / "scheduler" / "create-job.sh").read_text(encoding="utf-8")
    assert "flexTemplates:launch" in script and "launch-body.json" in script


def test_kubernetes_cronjob_runs_akhbar_with_known_options():
    docs = [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "akhbar-cronjob.yaml").read_text(encoding="utf-8")) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ConfigMap", "ServiceAccount", "CronJob"}
    cron = kinds["CronJob"]["spec"]
    assert cron["concurrencyPolicy"] == "Forbid"
    (container,) = cron["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["akhbar"] and container["args"][0] == "run"
    from apache_beam.options.pipeline_options import PipelineOptions

    options = _run_options()
    beam_options = PipelineOptions([]).get_all_options()
    flags = [a.split("=", 1)[0] for a in container["args"][1:]]
    assert {"--sources", "--output"} <= set(flags)
    assert all(f in options or f[2:] in beam_options for f in flags), flags
    sources = yaml.safe_load(kinds["ConfigMap"]["data"]["sources.yaml"])
    assert sources["sources"][0]["id"]


def test_airflow_dag_compiles_and_uses_declared_parameters(tmp_path):
    dag = DEPLOY / "airflow" / "akhbar_dataflow_dag.py"
    py_compile.compile(str(dag), cfile=str(tmp_path / "dag.pyc"), doraise=True)
    text = dag.read_text(encoding="utf-8")
    assert "DataflowStartFlexTemplateOperator" in text and "max_active_runs=1" in text
    declared = {p["name"] for p in _metadata()["parameters"]}
    params = re.search(r'"parameters": \{(.*?)\}', text, re.S).group(1)
    assert set(re.findall(r'"(\w+)":', params)) <= declared
