"""Flex Template entry point: ``akhbar run`` with the template's parameters.

The Dataflow template launcher starts this file with every parameter as ``--name=value``
(``metadata.json`` names them with underscores, e.g. ``--fetch_concurrency=8``) followed by the
pipeline options Dataflow adds itself (``--runner``, ``--project``, ``--region``,
``--temp_location``, ``--sdk_container_image`` …). This script turns the template parameters
into the ``akhbar run`` options they name (``--fetch-concurrency=8``; a boolean parameter
``--ignore_feed_backoff=true`` becomes the flag ``--ignore-feed-backoff``), copies a ``gs://``
sources file to a local temporary file, and passes everything else through to Beam unchanged.
"""
from __future__ import annotations

import json
import os
import sys
import tempfile

METADATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "metadata.json")
FLAGS = {"ignore_feed_backoff"}  # boolean options: a flag when "true", left out when "false"


def template_parameters(metadata_path: str = METADATA) -> set[str]:
    with open(metadata_path, encoding="utf-8") as f:
        return {p["name"] for p in json.load(f)["parameters"]}


def translate(argv: list[str], names: set[str]) -> tuple[list[str], list[str]]:
    """(``akhbar run`` options, Beam pipeline options) from the launcher's arguments."""
    ours: list[str] = []
    beam: list[str] = []
    for arg in argv:
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in names and eq:
            option = "--" + name.replace("_", "-")
            if name in FLAGS:
                if value.strip().lower() in ("true", "1", "yes"):
                    ours.append(option)
            else:
                ours.append(f"{option}={value}")
        else:
            beam.append(arg)
    return ours, beam


def localize_sources(ours: list[str], workdir: str) -> list[str]:
    """Replace a ``--sources=gs://…`` with a local copy (the sources loader reads local files)."""
    out = []
    for arg in ours:
        if arg.startswith("--sources=gs://"):
            from akhbar.transforms import store

            path = os.path.join(workdir, "sources.yaml")
            with open(path, "wb") as f:
                f.write(store.read_bytes(arg[len("--sources="):]))
            arg = f"--sources={path}"
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    from akhbar.pipelines.cli import main as akhbar_main

    ours, beam = translate(sys.argv[1:] if argv is None else argv, template_parameters())
    with tempfile.TemporaryDirectory(prefix="akhbar-template-") as tmp:
        return akhbar_main(["run", *localize_sources(ours, tmp), *beam])


if __name__ == "__main__":
    sys.exit(main())
