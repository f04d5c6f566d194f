"""The batch graph on Beam's TestPipeline, with assert_that on good and dead-letter outputs."""
import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to, is_not_empty

from akhbar.pipelines.batch import RunConfig, build_pipeline, new_run_id
from akhbar.sample.site import expected, sources_yaml
from akhbar.schemas.sources import validate_text
from akhbar.transforms.http import FetchConfig


@pytest.fixture()
def cfg(sample_site, tmp_path):
    sources, problems = validate_text(sources_yaml(sample_site.base_url))
    assert not problems
    return RunConfig(sources=tuple(sources), output=str(tmp_path / "out"), run_id=new_run_id(),
                     allow_private_hosts=True, fetch=FetchConfig(retries=0, host_interval=0))


def test_graph_outputs(cfg, sample_site):
    truth = expected(sample_site.base_url)
    near_later, near_first = truth["near_duplicates"][0]
    with TestPipeline() as p:
        out = build_pipeline(p, cfg)
        assert_that(out["articles"] | "urls" >> beam.Map(lambda a: a.url),
                    equal_to(sorted(truth["articles"])), label="every unique article once")
        assert_that(out["articles"] | "dups" >> beam.Filter(lambda a: a.duplicate_of)
                    | "dupurl" >> beam.Map(lambda a: a.url),
                    equal_to([near_later]), label="one near-duplicate")
        assert_that(out["dead_letters"] | "dl" >> beam.Map(lambda d: (d.url, d.reason)),
                    equal_to(sorted(truth["dead_letters"].items())), label="dead letters")
        assert_that(out["written"], is_not_empty(), label="files written")


def test_nothing_to_do_still_writes_nothing_and_succeeds(tmp_path):
    cfg = RunConfig(sources=(), output=str(tmp_path / "o"), run_id="r")
    with TestPipeline() as p:
        out = build_pipeline(p, cfg)
        assert_that(out["articles"], equal_to([]))
    assert not (tmp_path / "o" / "articles").exists()
