"""Shared fixtures. Tests talk only to servers on 127.0.0.1 started here."""
from __future__ import annotations

import os

# Never let google-auth or pyarrow's GCS client probe the cloud metadata address.
os.environ.setdefault("NO_GCE_CHECK", "true")
for _var in ("GCE_METADATA_HOST", "GCE_METADATA_IP", "GCE_METADATA_ROOT"):
    os.environ.setdefault(_var, "127.0.0.1:9")

import pytest  # noqa: E402
from apache_beam.testing.test_pipeline import TestPipeline  # noqa: E402

# TestPipeline() with no runner means Beam's DirectRunner, which in Beam 2.77 first tries to
# download the Prism runner from GitHub (a request off this machine) before falling back to the
# FnApiRunner. Name the FnApiRunner directly, as `akhbar run` does (pipelines/batch.py).
TestPipeline.pytest_test_pipeline_options = "--runner=FnApiRunner"

from akhbar.sample.site import SampleSite  # noqa: E402
from tests.servers import RouteServer  # noqa: E402


@pytest.fixture(scope="session")
def sample_site():
    with SampleSite(port=0) as site:
        yield site


@pytest.fixture()
def server():
    with RouteServer() as srv:
        yield srv


def ingest_sample(site: SampleSite, folder) -> tuple:
    """Write the sample site's sources file into ``folder`` and run ``akhbar run`` on it into
    ``folder/out``; return (sources path, output path)."""
    from akhbar.pipelines.cli import main
    from akhbar.sample.site import sources_yaml

    src = folder / "sources.yaml"
    src.write_text(sources_yaml(site.base_url), encoding="utf-8")
    out = folder / "out"
    assert main(["run", "--sources", str(src), "--output", str(out), "--allow-private-hosts",
                 "--host-interval", "0", "--quiet"]) == 0
    return src, out
