"""Every Beam pipeline option the cloud docs and deploy files name exists in the installed Beam SDK,
and every value they give an option with fixed choices is one of those choices."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser
from apache_beam.portability import common_urns

ROOT = Path(__file__).resolve().parent.parent
# Beam options spelled as one word (gcloud flags of the same name are fine: they exist too)
ONE_WORD = {"runner", "project", "region", "experiments", "parallelism", "labels", "streaming"}
OPTION = re.compile(r"--([a-z][a-z0-9]*(?:_[a-z0-9]+)+|" + "|".join(sorted(ONE_WORD)) + r")(?![\w-])(?:=([^\s`'\"\\,)]+))?")


def _not_beam() -> set[str]:
    """Underscored flags that belong to something else: the Flex Template's parameters (see
    metadata.json) and the SDK worker pool's own command line."""
    import json

    from apache_beam.runners.worker import worker_pool_main

    params = {p["name"] for p in json.loads((ROOT / "deploy" / "dataflow" / "metadata.json").read_text())["parameters"]}
    pool = set(re.findall(r"'--(\w+)'", Path(worker_pool_main.__file__).read_text(encoding="utf-8")))
    assert "service_port" in pool
    return params | pool


def _beam_options() -> dict:
    """Option string → argparse action, from every PipelineOptions class, as Beam builds them."""
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)
    return dict(parser._option_string_actions)


def _readme_cloud_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split("## Running on Google Cloud", 1)[1].split("\n## ", 1)[0]


def _texts() -> dict[str, str]:
    texts = {"docs/cloud.md": (ROOT / "docs" / "cloud.md").read_text(encoding="utf-8"),
             "README.md#running-on-google-cloud": _readme_cloud_section()}
    for path in sorted((ROOT / "deploy").rglob("*")):
        if path.is_file() and path.suffix in {".md", ".sh", ".yaml", ".py", ".json", ""}:
            texts[str(path.relative_to(ROOT))] = path.read_text(encoding="utf-8")
    return texts


def _named(text: str):
    for m in OPTION.finditer(text):
        yield m.group(1), m.group(2)
    # gcloud's --additional-pipeline-options "name=value,name=value" (deploy/dataflow/run.sh)
    for group in re.findall(r'--additional-pipeline-options\s+"([^"]+)"', text):
        for pair in group.split(","):
            name, _, value = pair.partition("=")
            yield name.strip(), value.strip() or None


def test_the_cloud_docs_name_beam_options():
    named = [(name, value) for text in _texts().values() for name, value in _named(text)]
    names = {n for n, _ in named}
    assert {"flink_job_server_jar", "spark_job_server_jar", "environment_type", "sdk_container_image",
            "max_num_workers", "direct_running_mode"} <= names  # the scan finds what the docs say


@pytest.mark.parametrize("where", sorted(_texts()))
def test_every_named_beam_option_exists(where):
    options, others = _beam_options(), _not_beam()
    problems = []
    for name, value in _named(_texts()[where]):
        if name in others and "--" + name not in options:
            continue
        action = options.get("--" + name)
        if action is None:
            problems.append(f"--{name} is not a Beam {__import__('apache_beam').__version__} option")
        elif value and action.choices and value not in action.choices:
            problems.append(f"--{name}={value}: not one of {sorted(action.choices)}")
    assert not problems, f"{where}: " + "; ".join(problems)


def test_environment_types_in_the_docs_exist():
    text = (ROOT / "docs" / "cloud.md").read_text(encoding="utf-8")
    mentioned = set(re.findall(r"--environment_type=([A-Z_]+)", text)) | set(re.findall(r"^- `([A-Z]+)`:", text, re.M))
    assert {"LOOPBACK", "DOCKER", "PROCESS", "EXTERNAL"} <= mentioned
    for env in mentioned - {"LOOPBACK"}:  # LOOPBACK is Python's own embedded environment
        assert hasattr(common_urns.environments, env), env
